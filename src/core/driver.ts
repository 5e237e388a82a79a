/** A registered mdev bus driver (struct mdev_driver) and the devices bound to it. */
import type { MdevDriver } from './api.js';
import type { DeviceImpl } from './device.js';
import type { Owner } from './parent.js';

export class DriverEntry {
  readonly name: string;
  readonly drv: MdevDriver;
  state: 'live' | 'unregistering' = 'live';
  readonly devices = new Set<DeviceImpl>();
  /** Set once unregistration has started; every caller awaits the same run. */
  unregistering: Promise<void> | undefined;
  /** Registered by the core itself ('vfio_mdev' in the legacy profile). */
  readonly coreOwned: boolean;
  readonly owner: Owner | undefined;

  constructor(drv: MdevDriver, owner: Owner | undefined, coreOwned = false) {
    this.name = drv.name;
    this.drv = drv;
    this.owner = owner;
    this.coreOwned = coreOwned;
  }
}
