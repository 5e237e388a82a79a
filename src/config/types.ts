/**
 * The declarative vendor format ("vendors without code"): a JSON document that
 * describes parents, their types, a capacity model and vendor attributes.
 * `compileConfig` turns it into an ordinary `VendorPlugin`; the JSON Schema in
 * src/config/mdevfs-config.schema.json describes the same shape.
 *
 * The constants below are the single source of truth for the validator; the
 * schema repeats them and test/config/schema.test.ts checks that they agree.
 */
import type { DeviceApi, ErrnoName, PcieLinkSpeed } from '../core/api.js';

/** The format version this code reads. */
export const CONFIG_VERSION = 1;

export { DEVICE_APIS, PCIE_LINK_SPEEDS, PCIE_LINK_WIDTHS } from '../core/api.js';

/** pciConfig.hex: a whole configuration space, 256 or 4096 bytes, as hex. */
export const PCI_CONFIG_HEX_PATTERN = '^([0-9a-fA-F]{512}|[0-9a-fA-F]{8192})$';

export const CAPACITY_MODELS = ['fixed', 'pool', 'counter'] as const;
export type CapacityModel = (typeof CAPACITY_MODELS)[number];

/** Errnos a config may choose for a refused create (capacity.exhaustedErrno / conflictErrno). */
export const CAPACITY_ERRNOS = [
  'ENOSPC',
  'EUSERS',
  'EBUSY',
  'EINVAL',
  'EPERM',
  'ENOMEM',
  'EAGAIN',
  'ENODEV',
  'EEXIST',
] as const satisfies readonly ErrnoName[];
export type CapacityErrno = (typeof CAPACITY_ERRNOS)[number];

/** Default errno for a create that finds no room (the mtty/mbochs samples' ENOSPC). */
export const DEFAULT_EXHAUSTED_ERRNO: CapacityErrno = 'ENOSPC';
/**
 * Default errno for a create of a second type on a one-type-at-a-time parent.
 * NVIDIA does not document theirs; this is emulator-defined (see capacity.ts).
 */
export const DEFAULT_CONFLICT_ERRNO: CapacityErrno = 'EINVAL';

/** The SR-IOV files the core gives a PF (drivers/pci/iov.c sriov_pf_dev_attrs), and `virtfn<i>`. */
export const SRIOV_FILES = [
  'sriov_totalvfs',
  'sriov_numvfs',
  'sriov_offset',
  'sriov_stride',
  'sriov_vf_device',
  'sriov_drivers_autoprobe',
] as const;

/** Which template placeholders each kind of attribute may use. */
export const PLACEHOLDERS = {
  parent: ['parent', 'path', 'prefix'],
  pci: ['address'],
  vf: ['address', 'pf', 'index'],
  type: ['parent', 'path', 'prefix', 'type', 'type_id', 'type_name', 'device_api'],
  device: ['parent', 'path', 'prefix', 'type', 'type_id', 'type_name', 'device_api', 'uuid', 'index', 'index1'],
} as const;
export type AttrScope = keyof typeof PLACEHOLDERS;

/**
 * Attribute names the core itself renders in each directory; a config may not
 * shadow them. Group names (the part before '/') are checked against
 * RESERVED_GROUPS.
 */
export const RESERVED_ATTRS: Record<AttrScope, readonly string[]> = {
  parent: ['mdev_supported_types', 'subsystem', 'driver', 'iommu_group', 'power'],
  pci: ['mdev_supported_types', 'subsystem', 'driver', 'iommu_group', 'power', ...SRIOV_FILES],
  vf: ['mdev_supported_types', 'subsystem', 'driver', 'iommu_group', 'power', 'physfn'],
  type: ['create', 'devices', 'name', 'description', 'device_api', 'available_instances'],
  device: ['remove', 'mdev_type', 'driver', 'subsystem', 'iommu_group', 'uevent', 'power', 'vfio-dev'],
};
export const RESERVED_GROUPS: Record<AttrScope, readonly string[]> = {
  parent: ['mdev_supported_types', 'subsystem', 'driver', 'iommu_group', 'power'],
  pci: ['mdev_supported_types', 'subsystem', 'driver', 'iommu_group', 'power'],
  vf: ['mdev_supported_types', 'subsystem', 'driver', 'iommu_group', 'power', 'physfn'],
  type: [],
  device: ['mdev_type', 'driver', 'subsystem', 'iommu_group', 'power', 'vfio-dev'],
};

/** A file or directory name component (sysfs names: no '/', no whitespace, not '.' or '..'). */
export const NAME_PATTERN = '^[A-Za-z0-9_][A-Za-z0-9_.:+,@!~-]*$';
/** An attribute key: 'name' or 'group/name'. */
export const ATTR_KEY_PATTERN = '^[A-Za-z0-9_][A-Za-z0-9_.:+,@!~-]*(/[A-Za-z0-9_][A-Za-z0-9_.:+,@!~-]*)?$';
/** A PCI function's path below /sys: its basename is the address (domain:bus:device.function). */
export const PCI_PATH_PATTERN = '^devices(/[A-Za-z0-9_][A-Za-z0-9_.:+,@!~-]*)*/[0-9a-f]{4}:[0-9a-f]{2}:[01][0-9a-f]\\.[0-7]$';
/** A parent path below /sys. */
export const PARENT_PATH_PATTERN = '^devices(/[A-Za-z0-9_][A-Za-z0-9_.:+,@!~-]*)+$';
/** Octal permission bits as a string: '0644', '444', '0200'. */
export const MODE_PATTERN = '^0?[0-7]{3}$';

// ---------------------------------------------------------------------------
// The document

/**
 * An attribute's value: a string (read-only, templated), or an object that
 * also sets writability and mode. A writable attribute's store replaces its
 * value (for that device/type/parent) with the raw bytes written.
 */
export type AttrValue = string | AttrSpec;
export interface AttrSpec {
  /** Initial content (templated). Default "". */
  value?: string;
  /** A write replaces the value. Default: whether `mode` has a write bit, else false. */
  writable?: boolean;
  /** Permission bits as an octal string ('0644', '0200'). Default as the core's (0444 / 0644). */
  mode?: string;
}
/** Attribute key ('name' or 'group/name') → value. */
export type AttrMap = Record<string, AttrValue>;

export type CapacityConfig =
  | { model: 'fixed'; oneTypeAtATime?: boolean; exhaustedErrno?: CapacityErrno; conflictErrno?: CapacityErrno }
  | { model: 'pool'; size: number; oneTypeAtATime?: boolean; exhaustedErrno?: CapacityErrno; conflictErrno?: CapacityErrno }
  | { model: 'counter'; maxInstances: number };

export interface TypeConfig {
  /** sysfs_name: the directory is '<typePrefix>-<id>'. */
  id: string;
  /** pretty_name (the `name` file). */
  name?: string;
  /** The description file's exact content (no newline added). Absent ⇒ no file. */
  description?: string;
  deviceApi?: DeviceApi;
  /** fixed: how many of this type fit (required). pool: optional cap. */
  max?: number;
  /** pool: units of the parent's pool one device of this type takes (required). */
  cost?: number;
  /** Extra files in the type directory. */
  attrs?: AttrMap;
  /** Legacy profile only: which standard files the 4.10 type directory had. */
  legacyAttrs?: Array<'name' | 'description' | 'device_api' | 'available_instances'>;
}

/**
 * A PCI parent's binary `config` file. Without this field a parent on the
 * pci bus gets one generated from its identity attrs (vendor, device, class,
 * subsystem_vendor, subsystem_device, revision, irq, resource).
 */
export interface PciConfigConfig {
  /** The PCIe link of the generated space; absent: an integrated endpoint (no link). */
  link?: { speed: PcieLinkSpeed; width: number };
  /** The exact bytes (256 or 4096), as hex: what `mdevfs capture` records. Excludes `link`. */
  hex?: string;
}

export interface ParentConfig {
  $comment?: string;
  /** Path below /sys, e.g. 'devices/pci0000:00/0000:00:02.0'. Its basename names the parent. */
  path: string;
  /** dev_driver_string(parent): the prefix of every type id. */
  typePrefix: string;
  /** The mdev bus driver that binds this parent's devices (ParentOps.driver). */
  driver: string;
  /** Default device_api of the types. Default 'vfio-pci'. */
  deviceApi?: DeviceApi;
  subsystem?: { class: string } | { bus: string };
  /** The driver bound to the parent itself (needs subsystem.bus). */
  parentDriver?: string;
  iommuGroup?: number;
  /** The parent's identity files (vendor, device, class, numa_node, uevent...). */
  attrs?: AttrMap;
  /** Legacy profile only: 4.10's parent_ops.dev_attr_groups. */
  devAttrs?: AttrMap;
  capacity: CapacityConfig;
  types: TypeConfig[];
  /** Files on every mediated device of this parent (the driver's dev_groups). */
  deviceAttrs?: AttrMap;
  /** The `config` file of a parent on the pci bus (PciConfigConfig). */
  pciConfig?: PciConfigConfig;
}

/**
 * A PCI function with SR-IOV (MdevHost.addPciDevice): a PF that is no mdev
 * parent, whose VFs sriov_numvfs adds and removes; each VF may be an mdev
 * parent (`sriov.vf.mdev`).
 */
export interface PciFunctionConfig {
  $comment?: string;
  /** The PF's path; its basename is its PCI address. */
  path: string;
  /** The PCI driver bound to the PF (default none: sriov_numvfs writes then fail with ENOENT). */
  driver?: string;
  iommuGroup?: number;
  /** The PF's identity files ({address}). */
  attrs?: AttrMap;
  /** Its `config` file (as a parent's; generated from attrs without it). */
  pciConfig?: PciConfigConfig;
  sriov: SriovConfig;
}

export interface SriovConfig {
  totalVfs: number;
  offset: number;
  stride: number;
  vfDevice: number;
  /** VFs enabled at load. Default 0. */
  numVfs?: number;
  /** sriov_configure refuses 0 with this errno while a VF's mdev parent has devices. Default: never refuses. */
  refuseDisableErrno?: CapacityErrno;
  vf: VfConfig;
}

export interface VfConfig {
  /** The driver a VF binds to (and whose probe registers `mdev`). Default none: VFs stay unbound. */
  driver?: string;
  /** VF i's IOMMU group is iommuGroupBase + i. Default: no group. */
  iommuGroupBase?: number;
  /** Each VF's identity files ({address}, {pf}, {index}). */
  attrs?: AttrMap;
  pciConfig?: PciConfigConfig;
  mdev?: VfMdevConfig;
}

/**
 * Each bound VF as an mdev parent. Capacity "fixed" and "pool" are the whole
 * GPU's, shared by its VFs; "counter" is each VF's core counter. `perVf`
 * caps the devices of one VF (NVIDIA Ampere: 1).
 */
export interface VfMdevConfig {
  typePrefix: string;
  driver: string;
  deviceApi?: DeviceApi;
  capacity: CapacityConfig;
  types: TypeConfig[];
  deviceAttrs?: AttrMap;
  perVf?: number;
  /** A create past perVf. Default ENOSPC. */
  perVfErrno?: CapacityErrno;
}

export interface ConfigDoc {
  $schema?: string;
  $comment?: string;
  /** Format version; 1 if absent. */
  version?: 1;
  /** The plugin's name. Default: 'config:<file basename>' or 'config'. */
  name?: string;
  /** May be empty when pciFunctions lists something. */
  parents: ParentConfig[];
  pciFunctions?: PciFunctionConfig[];
}
