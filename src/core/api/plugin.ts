/**
 * How a plugin meets the core: the module it exports (VendorPlugin), the
 * registration API its init receives (MdevHost), and bus drivers (MdevDriver).
 */
import type { Awaitable, Profile } from './basics.js';
import type { MdevDevice, Parent, ParentDeviceSpec, ParentOps } from './objects.js';
import type { PciDevice, PciDeviceSpec } from './pci.js';

// ---------------------------------------------------------------------------
// Bus drivers (struct mdev_driver)

/**
 * A driver on the mdev bus (struct mdev_driver; mdev_register_driver). The
 * core binds each new mediated device to its parent's `driver` (modern) or
 * to 'vfio_mdev' (legacy), before the parent's `create`, and calls `probe`;
 * `remove` on unbind. Throwing from probe fails the create with that errno;
 * remove cannot fail (a throw is logged). `DD` types `MdevDevice.drvdata`.
 */
export interface MdevDriver<DD = unknown> {
  name: string;
  probe?(dev: MdevDevice<DD>): Awaitable<void>;
  remove?(dev: MdevDevice<DD>): Awaitable<void>;
}

// ---------------------------------------------------------------------------
// What a plugin is given

/** The registration API a plugin's init/exit receives (the kernel's exported symbols). */
export interface MdevHost {
  readonly profile: Profile;
  /** mdev_register_driver: EBUSY if the name is taken. Binds the devices waiting for it. */
  registerDriver<DD = unknown>(drv: MdevDriver<DD>): Promise<void>;
  /** mdev_unregister_driver: unbinds its devices first (each after its last VFIO close). */
  unregisterDriver(name: string): Promise<void>;
  /**
   * mdev_register_device(dev, parent_ops) (today: mdev_register_parent):
   * EEXIST if a parent of that name exists, EINVAL for bad ops. `DD` and `PD`
   * come from the ops: `ParentOps<Port>` makes every `dev.drvdata` a Port.
   */
  registerDevice<DD = unknown, PD = unknown>(device: ParentDeviceSpec, ops: ParentOps<DD, PD>): Promise<Parent<PD>>;
  /** mdev_unregister_device: removes every child device first (no veto). */
  unregisterDevice(parent: Parent | string): Promise<void>;
  /**
   * A PCI function bound to the plugin's driver that is no mdev parent of
   * its own, e.g. an SR-IOV PF whose VFs are (pci.ts). Its VFs in
   * `sriov.numVfs` are added and probed at once. EEXIST if a function or
   * parent of that name exists, EINVAL for a bad spec. A VF's probe may
   * registerDevice the VF: give it `{ path: vf.device.path, typePrefix }`;
   * the parent takes the VF's subsystem, driver, IOMMU group and files, and
   * adds only mdev_supported_types (and its class/mdev_bus link) to them.
   */
  addPciDevice<D = unknown>(device: PciDeviceSpec): Promise<PciDevice<D>>;
  /** Disable its SR-IOV (the VFs go, with their events), then remove it. */
  removePciDevice(device: PciDevice | string): Promise<void>;
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

/**
 * What a driver module's default export is (module_init / module_exit). When
 * the plugin is unloaded, whatever it left registered is unregistered after
 * `exit`; a failed `init` is cleaned up the same way.
 */
export interface VendorPlugin {
  name: string;
  init(mdev: MdevHost): Awaitable<void>;
  exit?(mdev: MdevHost): Awaitable<void>;
}

/** Identity helper that gives a plugin object literal its types. */
export function definePlugin(plugin: VendorPlugin): VendorPlugin {
  return plugin;
}
