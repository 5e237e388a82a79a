/**
 * What a vendor registers and what the core hands back: the parent device,
 * its types, its ops table, and the parent, type and device objects. They
 * refer to each other, as struct mdev_parent, mdev_type and mdev_device do in
 * include/linux/mdev.h, so they live in one file.
 */
import type { Attribute, AttributeGroup, Awaitable, DeviceApi, DmaUnmapEvent, MmapRequest } from './basics.js';

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
   * or a bus ('pci' → /sys/bus/pci/devices/<name>). Gives the `subsystem` link;
   * without one the parent sends no uevents.
   */
  subsystem?: { class: string } | { bus: string };
  /** The driver bound to the parent ('i915' → driver -> .../bus/pci/drivers/i915). Needs a bus. */
  driver?: string;
  /** The parent's own IOMMU group (PCI devices have one); never given to a mediated device. */
  iommuGroup?: number;
  /**
   * The parent's identity files (vendor, device, class, numa_node, uevent,
   * sriov_*...), in both profiles; they take precedence over the generic
   * uevent and power/ files. A `uevent` attribute's show (text or bytes) is
   * the file's content and the variables of the parent's uevents; a write to
   * the file is the driver core's (its `store` is not called). The show runs inside
   * registerDevice and unregisterDevice, under the core's lock, so it must not
   * call back into the host (EDEADLK) and must not rely on `drvdata`, which
   * the plugin cannot have set yet at registration.
   */
  attrs?: AttributeGroup<Parent>[];
}

// ---------------------------------------------------------------------------
// Types (mdev_supported_types/<prefix>-<id>)

export interface MdevTypeSpec {
  /**
   * The suffix after '<typePrefix>-' ('1' → 'mtty-1', 'GVTg_V5_4' →
   * 'i915-GVTg_V5_4'): today's mdev_type.sysfs_name; in 4.10 the name of the
   * type's group in supported_type_groups.
   */
  id: string;
  /**
   * What the `name` file shows: today's mdev_type.pretty_name (the file falls
   * back to `id` when absent); in 4.10 the vendor's own `name` attribute (no
   * file when absent).
   */
  name?: string;
  /**
   * The `description` file's exact content (no newline is added): today's
   * mdev_driver.show_description, 4.10's vendor `description` attribute.
   * Absent ⇒ no description file. A function may be async, like a show.
   */
  description?: string | ((type: MdevType) => Awaitable<string | Uint8Array>);
  /** Overrides ParentOps.deviceApi for this type. */
  deviceApi?: DeviceApi;
  /**
   * Extra files in the type directory (4.10: more attributes in the type's
   * supported_type_groups group); one named like a `legacyAttrs` file replaces it.
   * Shown in both profiles, although today's kernel has no vendor type
   * attributes (drivers/vfio/mdev/mdev_sysfs.c mdev_types_core_attrs).
   */
  attrs?: Attribute<MdevType>[];
  /**
   * Legacy profile only: which standard files this vendor's 4.10 type
   * directory had (in 4.10 they were all the vendor's own attributes; the
   * core added only `create` and `devices/`). Default: name (if `name` is set), description
   * (if set), device_api, available_instances. Old i915 GVT-g had no `name`.
   */
  legacyAttrs?: Array<'name' | 'description' | 'device_api' | 'available_instances'>;
  /** Free data for the plugin (e.g. ports per instance, framebuffer size). */
  data?: unknown;
}

// ---------------------------------------------------------------------------
// The parent's ops (struct parent_ops)

/**
 * What a vendor registers for one parent: 4.10's `struct parent_ops`
 * (include/linux/mdev.h, passed to mdev_register_device). Today's kernel split
 * it into `struct mdev_driver` (passed to mdev_register_parent with the
 * parent's `struct mdev_type` array) and the `struct vfio_device_ops` its probe
 * registers. `DD` types `MdevDevice.drvdata` in every callback; `PD` types
 * `Parent.drvdata` where the callback receives the parent itself (and on the
 * `Parent<PD>` that registerDevice returns); `dev.parent` is an untyped `Parent`.
 *
 * | ParentOps | 4.10 `struct parent_ops` | today's kernel | read by |
 * |---|---|---|---|
 * | `driver` | — (every mdev binds to vfio_mdev) | the `mdev_driver` given to `mdev_register_parent` | modern |
 * | `deviceApi` | the vendor's `device_api` type attribute | `mdev_driver.device_api` | both |
 * | `types` | `supported_type_groups` | the `mdev_type` array (`sysfs_name`, `pretty_name`) | both |
 * | `devAttrGroups` | `dev_attr_groups` | — (use `ParentDeviceSpec.attrs`) | legacy |
 * | `mdevAttrGroups` | `mdev_attr_groups` | `mdev_driver.driver.dev_groups` | both |
 * | `maxInstances` | — (the vendor's `available_instances` attribute) | `mdev_driver.max_instances` | both (legacy: shown, not enforced) |
 * | `getAvailable` | the vendor's `available_instances` attribute | `mdev_driver.get_available(mtype)` | both |
 * | `MdevTypeSpec.description` | the vendor's `description` type attribute | `mdev_driver.show_description(mtype)` | both |
 * | `create` | `create` | `mdev_driver.probe` | both |
 * | `remove` | `remove` (may refuse) | `mdev_driver.remove` (cannot refuse) | both |
 * | `open` | `open` | `vfio_device_ops.open_device` | both |
 * | `close` | `release` | `vfio_device_ops.close_device` | both |
 * | `read`, `write`, `ioctl`, `mmap` | `read`, `write`, `ioctl`, `mmap` | `vfio_device_ops.read`, `write`, `ioctl`, `mmap` | both |
 * | `notifier` | — (`vfio_register_notifier(VFIO_IOMMU_NOTIFY_DMA_UNMAP)`) | `vfio_device_ops.dma_unmap` | both |
 *
 * `create` and a registered bus driver's `MdevDriver.probe` both stand for
 * today's `mdev_driver.probe`: in the modern profile the core calls the
 * driver's probe first (if the plugin registered that driver), then `create`.
 *
 * registerDevice fails with EINVAL without `create`, `remove`, a known
 * `deviceApi` and at least one type (and, modern, a valid `driver` name), as
 * mdev_register_device did without create, remove or supported_type_groups.
 */
export interface ParentOps<DD = unknown, PD = unknown> {
  /**
   * Modern profile: the mdev bus driver that binds this parent's devices
   * (struct mdev_driver's name: 'mtty', 'intel_vgpu_mdev',
   * 'nvidia-vgpu-vfio', 'vfio_ap_mdev'). Registered implicitly, with no
   * probe/remove, if the plugin has not registered it. The legacy profile
   * ignores it and binds every device to 'vfio_mdev'.
   */
  driver: string;
  /** device_api of every type unless the type overrides it. */
  deviceApi: DeviceApi;
  /** The parent's types: at least one, ids unique (EEXIST). */
  types: MdevTypeSpec[];
  /** Attributes on the parent device; legacy profile only (4.10's dev_attr_groups). */
  devAttrGroups?: AttributeGroup<Parent<PD>>[];
  /**
   * Attributes on every mediated device. Modern: present while the device is
   * bound to its driver (really_probe adds the driver's dev_groups). Legacy:
   * added once `create` has succeeded (mdev_device_create_ops in 4.10's
   * drivers/vfio/mdev/mdev_core.c).
   */
  mdevAttrGroups?: AttributeGroup<MdevDevice<DD>>[];

  /**
   * Capacity model 1, the core counter: how many devices the parent can
   * host, all types together. Ignored when `getAvailable` is given.
   * Modern: one counter per parent (mdev_parent.available_instances, set from
   * mdev_driver.max_instances); `available_instances` shows what is left and a
   * create with none left fails with EUSERS (mdev_device_create).
   * Legacy: `available_instances` shows maxInstances minus the parent's
   * devices, but nothing is enforced: 4.10 had no core counter, so refuse in
   * `create` yourself.
   * Default 0: without this or `getAvailable`, available_instances reads 0
   * and every modern create fails with EUSERS.
   */
  maxInstances?: number;
  /**
   * Capacity model 2: the `available_instances` of a type, evaluated on every
   * read (today's mdev_driver.get_available). Called synchronously: it must
   * return a number, so it cannot await. A Promise, a non-number or a throw
   * shows 0 (and is logged); the value is floored and clamped to [0, 2^32-1].
   * The core then enforces nothing: `create` must refuse (e.g. ENOSPC).
   */
  getAvailable?(type: MdevType): number;

  /**
   * A device is being created (a write to the type's `create`): set it up,
   * e.g. claim capacity and set `dev.drvdata`, or throw an errno, which the
   * write fails with. Runs after the bus driver's probe (modern: the parent's
   * `driver`; legacy: vfio_mdev). A create that succeeds after its timeout
   * is followed by a `remove`, so nothing leaks.
   */
  create(dev: MdevDevice<DD>): Awaitable<void>;
  /**
   * A device is being removed (a write to its `remove`, or its parent going
   * away). Legacy: called at once, even while the device is open; throwing
   * refuses the removal: the writer sees EBUSY and `remove` reappears, as in
   * 4.10's mdev_device_remove_ops (not when the parent is being unregistered).
   * Modern: called after the last VFIO close; a throw is only logged, as
   * today's mdev_driver.remove cannot fail.
   */
  remove(dev: MdevDevice<DD>): Awaitable<void>;

  // The VFIO device file operations, forwarded by the bus driver.
  /**
   * The first open of the VFIO device (today's open_device; 4.10 called open
   * on every open of the device fd). Throw to refuse the open. Optional: without
   * it opens succeed. One that succeeds after its timeout gets its `close`.
   */
  open?(dev: MdevDevice<DD>): Awaitable<void>;
  /**
   * The last close (4.10's release). A throw is only logged. Pages the device
   * still has pinned are released afterwards.
   */
  close?(dev: MdevDevice<DD>): Awaitable<void>;
  /**
   * Read up to `count` bytes at `offset` (region index << 40 | offset in the
   * region). Return the bytes read; more than `count` fails with EIO.
   * Without `read` (likewise write, ioctl, mmap) the call fails with EINVAL,
   * as 4.10's vfio_mdev did.
   */
  read?(dev: MdevDevice<DD>, count: number, offset: number): Awaitable<Buffer>;
  /** Write `data` at `offset`; return how many bytes were consumed (0 to data.length, else EIO). */
  write?(dev: MdevDevice<DD>, data: Buffer, offset: number): Awaitable<number>;
  /**
   * A VFIO ioctl: `arg` is the in/out argument struct, which the plugin may
   * fill. Return a result ≥ 0; a negative number is taken as -errno.
   */
  ioctl?(dev: MdevDevice<DD>, cmd: number, arg: Buffer): Awaitable<number>;
  /** Map part of a region: return the memory that backs it (shared with the caller). */
  mmap?(dev: MdevDevice<DD>, req: MmapRequest): Awaitable<Buffer>;
  /**
   * The IOMMU DMA-unmap notifier: a user unmaps a range in which this device
   * pinned pages. Unpin them before returning, or the user's unmap fails with
   * EBUSY. A plugin that pins pages must have one: without it, pinPages fails
   * with EINVAL. A throw is only logged.
   */
  notifier?(dev: MdevDevice<DD>, event: DmaUnmapEvent): Awaitable<void>;
}

// ---------------------------------------------------------------------------
// Objects the core hands to plugins

/** A registered parent (4.10's struct parent_device, today's struct mdev_parent). */
export interface Parent<PD = unknown> {
  /** basename of the path: '0000:00:02.0', 'mtty', 'matrix'. */
  readonly name: string;
  readonly device: Readonly<ParentDeviceSpec>;
  readonly ops: ParentOps<unknown, PD>;
  readonly types: readonly MdevType[];
  /** Free slot for the plugin (dev_get_drvdata); undefined until the plugin sets it. */
  drvdata: PD | undefined;
}

/** A type of a registered parent (struct mdev_type). */
export interface MdevType {
  /** The directory name: '<typePrefix>-<spec.id>', e.g. 'mtty-2'. */
  readonly id: string;
  /** What the `name` file shows (pretty name or the spec id). */
  readonly name: string;
  readonly deviceApi: DeviceApi;
  readonly parent: Parent;
  readonly spec: Readonly<MdevTypeSpec>;
}

/** A mediated device (struct mdev_device). */
export interface MdevDevice<D = unknown> {
  /** Lowercase canonical UUID: the device's directory name. */
  readonly uuid: string;
  readonly type: MdevType;
  readonly parent: Parent;
  /** The IOMMU group id while bound, else undefined. */
  readonly iommuGroup: number | undefined;
  /**
   * Free slot for the plugin (mdev_get_drvdata / mdev_set_drvdata), typed by
   * `ParentOps<D>`. Undefined until a probe or `create` sets it. The
   * `mdevAttrGroups` files appear only once `create` has returned (in both
   * profiles), so their shows see what it set.
   */
  drvdata: D | undefined;
}
