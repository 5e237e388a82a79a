/**
 * The core's state as its consumers (the sysfs tree, the CLI, tests) read it.
 * Plugins see the narrower types of api.ts; these add what a presentation needs.
 *
 * Presenters do not interpret "what changed": on every `CoreChange` they
 * reconcile the named object's nodes with the fields below, so the tree is
 * always a function of this state (core-view.ts). The step a change names
 * says which fields moved together (DeviceStep).
 */
import type { EventEmitter } from 'node:events';
import type { FaultTable } from './faults.js';
import type {
  AttributeGroup,
  MdevDevice,
  MdevHost,
  MdevType,
  MmapRequest,
  Parent,
  PciDevice,
  Profile,
  Uevent,
  VendorPlugin,
} from './api.js';

/**
 * A mediated device's lifecycle, in the kernel's order:
 * 'adding'   device_add done: dir, uevent, power/, subsystem, bus/mdev/devices link
 *            (and `remove` in the modern profile) exist; not yet linked to its type.
 * 'active'   probe/create succeeded: driver, iommu_group, mdev_type, devices/<uuid>.
 * 'removing' the remove has begun: `remove` and the type links are gone; once
 *            `releasing`, device_del's files too, and it may be waiting for the
 *            VFIO device's last close.
 * 'gone'     device_del done: nothing of it is left.
 */
export type DeviceState = 'adding' | 'active' | 'removing' | 'gone';

export interface CoreDevice extends MdevDevice {
  readonly state: DeviceState;
  /** The bus driver it is bound to (`DRIVER=` in its uevent), if any. */
  readonly boundDriver: string | undefined;
  /**
   * The driver is being released and its remove waits for the VFIO device's
   * last close (__device_release_driver in drivers/base/dd.c): the `driver`
   * links (driver_sysfs_remove) and the driver's attribute groups are gone,
   * and, modern, vfio-dev/vfio<k> (vfio_device_del, before the wait in
   * vfio_unregister_group_dev). boundDriver still names the driver until
   * 'unbound'; the driver links exist while boundDriver is set and this is not.
   * While 'removing', device_del() has also taken uevent, power/, subsystem
   * and bus/mdev/devices/<uuid> (it releases the driver in bus_remove_device).
   */
  readonly releasing: boolean;
  /**
   * The driver's probe has completed (really_probe, before driver_bound): the
   * VFIO objects its probe registered and, modern, the driver's attribute
   * groups are in place. Set with the 'probed' step, until 'unbound'.
   */
  readonly probed: boolean;
  /** mdev_type link and mdev_supported_types/<type>/devices/<uuid> exist. */
  readonly typeLinked: boolean;
  /** The `remove` attribute exists. */
  readonly hasRemoveFile: boolean;
  /** Open VFIO handles on this device. */
  readonly openCount: number;
  /** '/devices/.../<uuid>' as in DEVPATH (leading slash, no /sys). */
  readonly devpath: string;
  /**
   * The minor of the VFIO group char device /sys/devices/virtual/vfio/<iommuGroup>
   * (/dev/vfio/<N>, class `vfio`) while it exists: from the bind
   * (vfio_create_group; in the legacy profile, vfio_mdev's probe) until the unbind.
   */
  readonly vfioGroupMinor: number | undefined;
  /**
   * Modern profile only: k of the per-device VFIO object <uuid>/vfio-dev/vfio<k>
   * (class `vfio-dev`, lowest free index, vfio_main.c vfio_device_ida) while it
   * exists: from the bind until the unbind. It is also its char device minor.
   */
  readonly vfioDevIndex: number | undefined;
}

/**
 * Char device majors of the VFIO objects. Both are dynamic in the kernel
 * (alloc_chrdev_region "vfio" in vfio_group_init, then "vfio-dev" in
 * vfio_cdev_init), so they vary per boot; these are plausible values from the
 * top of the extended dynamic range (CHRDEV_MAJOR_DYN_EXT_START = 511).
 */
export const VFIO_GROUP_MAJOR = 511;
export const VFIO_DEV_MAJOR = 510;

/** A PCI function as its presenters read it (pci-objects.ts). */
export interface CorePciDevice extends PciDevice {
  readonly devpath: string;
  /** 'gone' once removed. */
  readonly state: 'live' | 'gone';
  /** A VF's `physfn` and its PF's `virtfn<i>` exist. */
  readonly linked: boolean;
  /** A PF's sriov_drivers_autoprobe. */
  readonly autoprobe: boolean;
  /** The bound driver's own files (a VF's VfSpec.driverAttrs). */
  readonly driverAttrs: readonly AttributeGroup<PciDevice>[];
}

export interface CoreParent extends Parent {
  /** 'unregistering' while mdev_unregister_device removes the children (creates get ENODEV). */
  readonly state: 'live' | 'unregistering';
  readonly types: readonly MdevType[];
  /** '/devices/...' */
  readonly devpath: string;
}

/**
 * What the kernel just did to a mediated device. The core announces a device
 * at these steps only, after the fields of that step have changed together
 * and before the step's uevents, so a listener that reads the tree on a
 * uevent finds it already there. No field changes between steps.
 *
 * | step            | fields that changed together                                   | kernel                                  |
 * |-----------------|----------------------------------------------------------------|-----------------------------------------|
 * | 'added'         | state 'adding'; hasRemoveFile (modern)                         | device_add (mdev_device_create)         |
 * | 'bound'         | boundDriver, iommuGroup, vfioGroupMinor, vfioDevIndex (before  | really_probe: driver_sysfs_add, before  |
 * |                 | the driver's probe)                                            | the probe                               |
 * | 'probed'        | probed (modern: after the vendor's create; legacy: after       | the probe's vfio_register_*, then       |
 * |                 | vfio_mdev's probe), before the VFIO `add` uevents              | device_add_groups(drv->dev_groups)      |
 * | 'active'        | state 'active', typeLinked; hasRemoveFile (legacy)             | mdev_create_sysfs_files                 |
 * | 'removing'      | state 'removing'; hasRemoveFile, typeLinked false              | mdev_device_remove → remove_sysfs_files |
 * | 'restored'      | legacy veto: state 'active', hasRemoveFile, typeLinked again   | 4.10 remove_store re-creating the file  |
 * | 'file-removed'  | hasRemoveFile false (a remove written during the create)       | device_remove_file_self                 |
 * | 'releasing'     | releasing; vfioDevIndex cleared (modern), before the wait for  | __device_release_driver up to the       |
 * |                 | the last close (while 'removing': device_del's files go too)   | driver's remove (vfio_device_del)       |
 * | 'unbound'       | boundDriver, vfioGroupMinor, vfioDevIndex cleared, releasing,  | __device_release_driver                 |
 * |                 | probed false (also after a failed probe)                       |                                         |
 * | 'removed'       | state 'gone'                                                   | device_del + put_device                 |
 * | 'opened'/'closed' | openCount                                                    | vfio_device_open / vfio_device_fops_release |
 *
 * A create therefore announces a device four times (added, bound, probed, active)
 * and a remove four times (removing, releasing, unbound, removed); an unbind
 * twice (releasing, unbound). The IOMMU group outlives 'unbound' until the
 * driver's remove has run: 'group-removed'.
 */
export type DeviceStep =
  | 'added'
  | 'bound'
  | 'probed'
  | 'active'
  | 'removing'
  | 'restored'
  | 'file-removed'
  | 'releasing'
  | 'unbound'
  | 'removed'
  | 'opened'
  | 'closed';

export type CoreChange =
  | { kind: 'driver-added'; driver: string }
  | { kind: 'driver-removed'; driver: string }
  | { kind: 'parent-added'; parent: CoreParent }
  | { kind: 'parent-removed'; parent: CoreParent }
  | { kind: 'device'; step: DeviceStep; device: CoreDevice }
  /**
   * A PCI function was added, removed, bound, unbound or linked, or a PF's
   * sriov_numvfs or VFs changed (pci-devices.ts gives the order).
   */
  | { kind: 'pci'; device: CorePciDevice }
  /**
   * A device's IOMMU group was released (iommu_group_remove_device, inside the
   * driver's remove): the group and the device's iommu_group link go. It has
   * no 'added' twin: a group appears with the device's 'bound' step.
   */
  | { kind: 'group-removed'; group: number };

/** Events the core emits (a typed EventEmitter contract). */
export interface CoreEvents {
  change: [CoreChange];
  uevent: [Uevent];
  log: [string];
}

/** Options for constructing the core. */
export interface CoreOptions {
  profile?: Profile;
  /** Bound on every plugin callback; a callback that has not settled by then fails with ETIMEDOUT. Default 5000. */
  callTimeoutMs?: number;
  /**
   * Numbers the machine under an overlay already uses (src/overlay/host-ids.ts):
   * never handed out, so emulated objects sit beside the host's without a clash.
   */
  hostIds?: HostIds;
}

/** IOMMU group ids, VFIO group char device minors and vfio<k> device indexes in use outside the emulation. */
export interface HostIds {
  iommuGroups?: Iterable<number>;
  vfioGroupMinors?: Iterable<number>;
  vfioDevices?: Iterable<number>;
}

// ---------------------------------------------------------------------------
// The programmatic VFIO-user side (what QEMU would do with /dev/vfio/<N>)

/** A simulated VFIO Type1 IOMMU container: the user's DMA mappings, against which pages are pinned. */
export interface Type1Container {
  /** VFIO_IOMMU_MAP_DMA: user virtual address range [vaddr, vaddr+size) at iova, page aligned. */
  mapDma(m: { vaddr: number; iova: number; size: number; prot: number }): void;
  /** VFIO_IOMMU_UNMAP_DMA: calls every attached device's notifier for pinned pages in range; EBUSY if a plugin left pages pinned. */
  unmapDma(iova: number, size: number): Promise<void>;
  /** Pages pinned through this container (the locked_vm accounting). */
  readonly lockedPages: number;
}

/** An open VFIO device (a file descriptor from VFIO_GROUP_GET_DEVICE_FD). */
export interface VfioDeviceHandle {
  readonly device: CoreDevice;
  read(count: number, offset: number): Promise<Buffer>;
  write(data: Buffer, offset: number): Promise<number>;
  ioctl(cmd: number, arg: Buffer): Promise<number>;
  mmap(req: MmapRequest): Promise<Buffer>;
  /** Idempotent. The last close of a device calls the plugin's close and releases a waiting remove. */
  close(): Promise<void>;
}

export interface VfioUser {
  /** Open a device (calls ParentOps.open). ENODEV if it is not active, ENOTTY... per plugin. */
  open(uuid: string, opts?: { container?: Type1Container }): Promise<VfioDeviceHandle>;
  /** A new container; `pinning: false` models a backend without pinning support (ENOTTY). */
  createContainer(opts?: { pinning?: boolean; lockedLimitPages?: number }): Type1Container;
}

// ---------------------------------------------------------------------------
// The core, as the sysfs tree, the CLI and tests use it

export interface MdevCoreApi extends EventEmitter<CoreEvents> {
  readonly profile: Profile;
  /** The bound on every plugin callback (ms); the sysfs layer uses it for attribute show/store too. */
  readonly callTimeoutMs: number;
  /** The registration API handed to plugins. */
  readonly host: MdevHost;
  readonly vfio: VfioUser;

  /** Registered bus driver names (bus/mdev/drivers/<name>). */
  drivers(): readonly string[];
  parents(): Iterable<CoreParent>;
  parent(name: string): CoreParent | undefined;
  /** O(1). Accepts any case. */
  device(uuid: string): CoreDevice | undefined;
  devices(): Iterable<CoreDevice>;
  devicesOfType(type: MdevType): Iterable<CoreDevice>;
  devicesOfParent(parent: Parent): Iterable<CoreDevice>;
  /** What available_instances shows (core counter, plugin getAvailable, never negative). */
  availableInstances(type: MdevType): number;
  /** Injected faults (faults.ts); the sysfs layer consults them before a vendor show/store. */
  readonly faults?: FaultTable;
  /** PCI functions added by plugins, and their VFs (pci.ts). */
  pciDevices(): Iterable<CorePciDevice>;
  pciDevice(name: string): CorePciDevice | undefined;
  /**
   * sriov_numvfs_store after kstrtou16: ERANGE above sriov_totalvfs, ENOENT
   * without sriov_configure, EBUSY from non-zero to another non-zero, or the
   * driver's refusal; then the VFs are added or removed.
   */
  setNumVfs(pf: CorePciDevice, n: number): Promise<void>;
  /** sriov_drivers_autoprobe_store. */
  setVfAutoprobe(pf: CorePciDevice, on: boolean): void;
  /** Active IOMMU group ids allocated to mediated devices. */
  iommuGroups(): Iterable<number>;
  groupDevices(group: number): Iterable<CoreDevice>;

  /**
   * mdev_device_create(type, uuid): a new device named by `uuid` (any case;
   * EINVAL unless it is a UUID). EEXIST for a name in use (modern: on any
   * parent, checked before capacity), then capacity (EUSERS, or the vendor's
   * errno). The sysfs `create` store parses the written bytes into the UUID.
   */
  create(type: MdevType, uuid: string): Promise<CoreDevice>;
  /**
   * What a non-zero write to the device's `remove` attribute does
   * (remove_store: device_remove_file_self, then mdev_device_remove): nothing
   * if a remove is already under way; EAGAIN (and the file gone) while the
   * device is still being created; EBUSY when a legacy vendor refuses.
   */
  removeSelf(dev: CoreDevice): Promise<void>;
  /** Remove a device (mdev_device_remove): EAGAIN unless it is active. */
  remove(dev: CoreDevice): Promise<void>;

  /**
   * The bus's drivers_autoprobe flag. Legacy: a new device is bound to
   * vfio_mdev only while it is set; modern creates ignore it.
   */
  autoprobe: boolean;
  /** bind_store: ENODEV in the modern profile (the mdev bus matches no driver); legacy binds an unbound device. */
  bindDevice(dev: CoreDevice, driver: string): Promise<void>;
  /** unbind_store: detach `dev` from `driver` (ENODEV if it is not bound to it); the device stays. */
  unbindDevice(dev: CoreDevice, driver: string): Promise<void>;
  /** drivers_probe_store: bind an unbound device to a matching driver, if any (legacy only). */
  probeDevice(dev: CoreDevice): Promise<void>;
  /**
   * Send a uevent user space asked for by writing a `uevent` file
   * (kobject_synth_uevent): ACTION, DEVPATH, SUBSYSTEM and the rest in the
   * given order; the core adds SEQNUM.
   */
  sendUevent(fields: Readonly<Record<string, string>>): void;

  /** Run a plugin's init with the host API (module_init). Its parents/drivers are tracked for unload. */
  loadPlugin(plugin: VendorPlugin): Promise<void>;
  /** exit(), then unregister whatever it left registered. */
  unloadPlugin(name: string): Promise<void>;
  /** Unload every plugin (in reverse order). */
  shutdown(): Promise<void>;
}
