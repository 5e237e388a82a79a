/**
 * The mdevfs plugin API: what a TypeScript vendor driver sees.
 *
 * It mirrors the kernel's first mainline mdev framework (Linux 4.10, designed in
 * 2016): a vendor registers its physical device as an mdev *parent* with a table
 * of `ParentOps` (supported types, create/remove, attribute groups and the VFIO
 * device callbacks), and *bus drivers* (`struct mdev_driver`) bind every
 * mediated device. The same plugin is presented as today's kernel (profile
 * 'modern', the default) or as 4.10 (profile 'legacy').
 *
 * A plugin is a plain module whose default export is a `VendorPlugin`:
 *
 * ```ts
 * import type { VendorPlugin } from 'mdevfs';
 * const plugin: VendorPlugin = {
 *   name: 'mtty',
 *   async init(mdev) {
 *     await mdev.registerDevice({ path: 'devices/virtual/mtty/mtty', typePrefix: 'mtty', subsystem: { class: 'mtty' } }, {
 *       driver: 'mtty', deviceApi: 'vfio-pci',
 *       types: [{ id: '1', name: 'Single port serial' }],
 *       create(dev) {}, remove(dev) {},
 *     });
 *   },
 * };
 * export default plugin;
 * ```
 *
 * Errors: throw an `MdevError('ENOSPC')`, or any object with an `errno` name or
 * number. A callback that throws something else fails with EIO; one that never
 * settles fails with ETIMEDOUT after the core's call timeout. Neither takes the
 * daemon down.
 */
import type { ErrnoName } from './errno.js';

export type { ErrnoName } from './errno.js';

/** Which kernel the tree presents. */
export type Profile = 'modern' | 'legacy';

/** include/uapi/linux/vfio.h VFIO_DEVICE_API_*_STRING. */
export type DeviceApi = 'vfio-pci' | 'vfio-platform' | 'vfio-amba' | 'vfio-ccw' | 'vfio-ap';

/** What a callback may return: a value, or a promise of one. */
export type Awaitable<T> = T | Promise<T>;

// ---------------------------------------------------------------------------
// Attributes (sysfs files a plugin contributes)

/**
 * One sysfs attribute file. `show` produces the whole content on every read
 * from offset 0 (sysfs adds nothing: include the trailing "\n" yourself).
 * `store` receives each write(2) as one call, raw (an `echo` brings its "\n");
 * throw an errno to fail the write.
 */
export interface Attribute<Ctx> {
  name: string;
  /** Permission bits. Default: 0644 with show+store, 0444 show only, 0200 store only. */
  mode?: number;
  show?(ctx: Ctx): Awaitable<string>;
  store?(ctx: Ctx, value: string): Awaitable<void>;
}

/** A set of attributes; a `name` puts them in a subdirectory (e.g. 'vendor'). */
export interface AttributeGroup<Ctx> {
  name?: string;
  attrs: Attribute<Ctx>[];
}

// ---------------------------------------------------------------------------
// The parent device (the physical device a vendor splits)

/**
 * The parent as the rest of the kernel sees it, before mdev: where it lives in
 * /sys and what identifies it. mdevfs renders these files in both profiles.
 */
export interface ParentDeviceSpec {
  /**
   * Path below /sys, e.g. 'devices/virtual/mtty/mtty',
   * 'devices/pci0000:00/0000:00:02.0', 'devices/vfio_ap/matrix',
   * 'devices/css0/0.0.0313'. Its basename is the parent's name
   * (/sys/class/mdev_bus/<name>).
   */
  path: string;
  /**
   * dev_driver_string(parent): the prefix of every type id ('<prefix>-<id>').
   * The class name for a driverless class device (mtty), else the bound
   * driver's name (i915, nvidia, vfio_ap, vfio_ccw).
   */
  typePrefix: string;
  /**
   * The subsystem the parent belongs to: a class ('mtty' → /sys/class/mtty/<name>)
   * or a bus ('pci' → /sys/bus/pci/devices/<name>). Gives the `subsystem` link.
   */
  subsystem?: { class: string } | { bus: string };
  /** The driver bound to the parent ('i915' → driver -> .../bus/pci/drivers/i915). Needs a bus. */
  driver?: string;
  /** The parent's own IOMMU group (PCI devices have one); reserved from the mdev allocator. */
  iommuGroup?: number;
  /** The parent's identity files: vendor, device, class, numa_node, uevent, sriov_*... */
  attrs?: AttributeGroup<Parent>[];
}

// ---------------------------------------------------------------------------
// Types (mdev_supported_types/<prefix>-<id>)

export interface MdevTypeSpec {
  /** sysfs_name: the suffix after '<typePrefix>-' ('1' → 'mtty-1', 'GVTg_V5_4' → 'i915-GVTg_V5_4'). */
  id: string;
  /** pretty_name. The `name` file falls back to `id` when absent (modern kernels). */
  name?: string;
  /**
   * The description file's exact content (no newline is added). Absent ⇒ no
   * description file, as the kernel hides it without show_description.
   */
  description?: string | ((type: MdevType) => string);
  /** Overrides ParentOps.deviceApi for this type. */
  deviceApi?: DeviceApi;
  /** Extra type attributes (4.10's supported_type_groups attrs beyond the standard ones). */
  attrs?: Attribute<MdevType>[];
  /**
   * Legacy profile only: which standard attributes this vendor's 4.10 type
   * directory had. Default: name (if `name` is set), description (if set),
   * device_api, available_instances. Old i915 GVT-g had no `name`.
   */
  legacyAttrs?: Array<'name' | 'description' | 'device_api' | 'available_instances'>;
  /** Free data for the plugin (e.g. ports per instance, framebuffer size). */
  data?: unknown;
}

// ---------------------------------------------------------------------------
// The parent's ops (struct parent_ops)

/** A VFIO region mapping request (struct vm_area_struct, reduced). */
export interface MmapRequest {
  /** Byte offset in the device file: region index << 40 | offset in region. */
  offset: number;
  length: number;
  /** PROT_READ | PROT_WRITE bits. */
  prot: number;
}

/** VFIO_IOMMU_NOTIFY_DMA_UNMAP: the plugin must unpin every page in [iova, iova+size). */
export interface DmaUnmapEvent {
  iova: number;
  size: number;
}

export interface ParentOps {
  /**
   * The mdev bus driver that binds this parent's devices in the modern
   * profile (struct mdev_driver's name: 'mtty', 'intel_vgpu_mdev',
   * 'nvidia-vgpu-vfio', 'vfio_ap_mdev'). Registered implicitly if the plugin
   * has not registered it. The legacy profile binds every device to 'vfio_mdev'.
   */
  driver: string;
  /** device_api of every type unless the type overrides it. */
  deviceApi: DeviceApi;
  /** supported_type_groups: at least one. */
  types: MdevTypeSpec[];
  /** Attributes on the parent device (4.10 dev_attr_groups; shown by the legacy profile only). */
  devAttrGroups?: AttributeGroup<Parent>[];
  /** Attributes on every mediated device (4.10 mdev_attr_groups; today's driver dev_groups). */
  mdevAttrGroups?: AttributeGroup<MdevDevice>[];

  /**
   * Capacity model 1 (the modern core counter): one counter per parent, shared
   * by all its types; a create with none left fails with EUSERS. Ignored when
   * `getAvailable` is given, and by the legacy profile (4.10 had no counter).
   */
  maxInstances?: number;
  /**
   * Capacity model 2: available_instances of a type, evaluated on every read.
   * The core then enforces nothing: `create` must refuse (e.g. ENOSPC).
   */
  getAvailable?(type: MdevType): number;

  /** A device is being created: set it up, or throw an errno (the `create` write fails with it). */
  create(dev: MdevDevice): Awaitable<void>;
  /**
   * A device is being removed. Throwing refuses the removal in the legacy
   * profile (the writer sees EBUSY and `remove` reappears); the modern
   * profile only logs it, as today's kernel cannot veto.
   */
  remove(dev: MdevDevice): Awaitable<void>;

  // The VFIO device file operations, forwarded by the bus driver.
  /** A user opened the VFIO device. Throw to refuse the open. */
  open?(dev: MdevDevice): Awaitable<void>;
  /** The last reference went away (4.10's release). */
  close?(dev: MdevDevice): Awaitable<void>;
  /** Read up to `count` bytes at `offset` (region index << 40 | offset). Return the bytes read. */
  read?(dev: MdevDevice, count: number, offset: number): Awaitable<Buffer>;
  /** Write `data` at `offset`; return how many bytes were consumed. */
  write?(dev: MdevDevice, data: Buffer, offset: number): Awaitable<number>;
  /** A VFIO ioctl: `arg` is the in/out argument struct, which the plugin may fill. Returns ≥ 0. */
  ioctl?(dev: MdevDevice, cmd: number, arg: Buffer): Awaitable<number>;
  /** Map part of a region: return the memory that backs it (shared with the caller). */
  mmap?(dev: MdevDevice, req: MmapRequest): Awaitable<Buffer>;
  /**
   * The IOMMU notifier (VFIO_IOMMU_NOTIFY_DMA_UNMAP). A plugin that pins pages
   * must have one and must unpin the range before returning; without it,
   * pinPages fails with EINVAL.
   */
  notifier?(dev: MdevDevice, event: DmaUnmapEvent): Awaitable<void>;
}

// ---------------------------------------------------------------------------
// Bus drivers (struct mdev_driver)

/**
 * A driver on the mdev bus. The core binds each new mediated device to its
 * parent's driver (modern) or to 'vfio_mdev' (legacy) and calls `probe`;
 * `remove` on unbind. Throwing from probe fails the create with that errno.
 */
export interface MdevDriver {
  name: string;
  probe?(dev: MdevDevice): Awaitable<void>;
  remove?(dev: MdevDevice): Awaitable<void>;
}

// ---------------------------------------------------------------------------
// Objects the core hands to plugins

export interface Parent {
  /** basename of the path: '0000:00:02.0', 'mtty', 'matrix'. */
  readonly name: string;
  readonly device: Readonly<ParentDeviceSpec>;
  readonly ops: ParentOps;
  readonly types: readonly MdevType[];
  /** Free slot for the plugin (dev_get_drvdata). */
  drvdata: unknown;
}

export interface MdevType {
  /** The directory name: '<typePrefix>-<spec.id>', e.g. 'mtty-2'. */
  readonly id: string;
  /** What the `name` file shows (pretty name or the spec id). */
  readonly name: string;
  readonly deviceApi: DeviceApi;
  readonly parent: Parent;
  readonly spec: Readonly<MdevTypeSpec>;
}

export interface MdevDevice {
  /** Lowercase canonical UUID: the device's directory name. */
  readonly uuid: string;
  readonly type: MdevType;
  readonly parent: Parent;
  /** The IOMMU group id while bound, else undefined. */
  readonly iommuGroup: number | undefined;
  /** Free slot for the plugin (mdev_get_drvdata / mdev_set_drvdata). */
  drvdata: unknown;
}

// ---------------------------------------------------------------------------
// What a plugin is given

/** Page protection for pinPages (IOMMU_READ | IOMMU_WRITE). */
export const IOMMU_READ = 1;
export const IOMMU_WRITE = 2;
/** vfio_pin_pages() refuses more than this many entries at once (E2BIG). */
export const VFIO_PIN_PAGES_MAX_ENTRIES = 512;
/** VFIO region offsets: index << 40 (VFIO_PCI_OFFSET_SHIFT). */
export const VFIO_PCI_OFFSET_SHIFT = 40;
export const VFIO_PCI_CONFIG_REGION_INDEX = 7;

/** The registration API a plugin's init/exit receives (the kernel's exported symbols). */
export interface MdevHost {
  readonly profile: Profile;
  /** mdev_register_driver: EBUSY if the name is taken. */
  registerDriver(drv: MdevDriver): Promise<void>;
  /** mdev_unregister_driver: unbinds its devices first. */
  unregisterDriver(name: string): Promise<void>;
  /** mdev_register_device(dev, parent_ops): EEXIST if already a parent, EINVAL for bad ops. */
  registerDevice(device: ParentDeviceSpec, ops: ParentOps): Promise<Parent>;
  /** mdev_unregister_device: removes every child device first. */
  unregisterDevice(parent: Parent | string): Promise<void>;
  /**
   * vfio_pin_pages (2016 form): translate user pfns of the device's container
   * into host pfns and pin them. EINVAL (no pfns, no notifier, pfn not mapped,
   * device not open), E2BIG (> 512), EPERM (prot exceeds the mapping), ENOTTY
   * (backend cannot pin), ENOMEM (locked-memory limit).
   */
  pinPages(dev: MdevDevice, userPfns: readonly number[], prot: number): Promise<number[]>;
  /** vfio_unpin_pages: returns how many were unpinned. */
  unpinPages(dev: MdevDevice, userPfns: readonly number[]): Promise<number>;
  /** Log through the daemon (shown with --verbose). */
  log(message: string): void;
}

/** What a driver module's default export is (module_init / module_exit). */
export interface VendorPlugin {
  name: string;
  init(mdev: MdevHost): Awaitable<void>;
  exit?(mdev: MdevHost): Awaitable<void>;
}

/** Identity helper that gives a plugin object literal its types. */
export function definePlugin(plugin: VendorPlugin): VendorPlugin {
  return plugin;
}

/** An uevent as the kernel would send it (keys and order as the kernel's). */
export interface Uevent {
  ACTION: 'add' | 'remove' | 'bind' | 'unbind' | 'change';
  /** '/devices/virtual/mtty/mtty/<uuid>' (leading slash, no /sys). */
  DEVPATH: string;
  SUBSYSTEM: string;
  DRIVER?: string;
  MDEV_STATE?: 'registered' | 'unregistered';
  SEQNUM: number;
  /**
   * A parent's other dev_uevent variables (PCI_CLASS, PCI_ID, PCI_SUBSYS_ID,
   * PCI_SLOT_NAME, MODALIAS, ST...), as its `uevent` file shows them.
   */
  [key: string]: string | number | undefined;
}

/** Re-exported so plugins can throw errno-carrying errors. */
export type { MdevError } from './errno.js';
export type ErrnoLike = ErrnoName | { errno: ErrnoName | number };
