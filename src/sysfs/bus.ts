/**
 * Buses: /sys/bus/mdev with its drivers (drivers/vfio/mdev/mdev_driver.c
 * bus_register; drivers/base/bus.c bind_store, unbind_store, drivers_probe,
 * drivers_autoprobe), and the plain bus directories a parent's subsystem
 * names (bus/pci and the like).
 */
import { MdevError } from '../core/errno.js';
import type { CoreDevice, MdevCoreApi } from '../core/model.js';
import { KDir, type KLink } from '../kernfs/index.js';
import { writtenWord } from './driver-core.js';
import type { UeventFiles } from './uevent-files.js';
import type { SysfsTree } from './tree.js';

/** A device's `driver` link and the driver's link back to it. */
export interface DriverLinks {
  name: string;
  link: KLink;
  backLink: KLink;
}

/** What the bus keeps of a device: its links to a driver. */
export interface BoundRec {
  dir: KDir;
  uuid: string;
  driver?: DriverLinks;
}

export class MdevBus {
  readonly dir: KDir;
  readonly devices: KDir;
  readonly #drivers: KDir;
  readonly #driverDirs = new Map<string, KDir>();
  /** Devices whose driver link points at each driver (unregistering one walks only these). */
  readonly #users = new Map<string, Set<BoundRec>>();

  constructor(
    private readonly tree: SysfsTree,
    private readonly core: MdevCoreApi,
    private readonly uevents: UeventFiles,
  ) {
    this.dir = tree.bus.mkdir('mdev');
    this.dir.opaque = true; // the framework's own: no host mdev bus shows through an overlay
    this.devices = this.dir.mkdir('devices');
    this.#drivers = this.dir.mkdir('drivers');
    this.dir.attr('drivers_autoprobe', 0o644, {
      show: () => (this.core.autoprobe ? '1\n' : '0\n'),
      store: d => {
        this.core.autoprobe = d[0] !== 0x30; /* '0' */
      },
    });
    this.dir.attr('drivers_probe', 0o200, {
      store: async d => {
        await this.core.probeDevice(this.#named(d));
      },
    });
    uevents.addWriteOnly({ dir: this.dir, subsystem: 'bus' });
  }

  /** bus/mdev/drivers/<drv> for each registered driver, and no other. */
  syncDrivers(): void {
    const want = new Set(this.core.drivers());
    for (const name of want) this.#ensureDriver(name);
    for (const [name, dir] of this.#driverDirs) {
      if (want.has(name)) continue;
      // Devices still bound to it lose their driver link (normally unbound first).
      for (const rec of [...(this.#users.get(name) ?? [])]) this.unlink(rec);
      this.#users.delete(name);
      dir.remove();
      this.#driverDirs.delete(name);
    }
  }

  #ensureDriver(name: string): KDir {
    let dir = this.#driverDirs.get(name);
    if (dir && !dir.dead) return dir;
    dir = this.#drivers.mkdir(name);
    dir.opaque = true;
    const self = dir;
    dir.attr('bind', 0o200, {
      store: async d => {
        if (self.dead) throw new MdevError('ENODEV');
        await this.core.bindDevice(this.#named(d), name);
      },
    });
    dir.attr('unbind', 0o200, {
      store: async d => {
        if (self.dead) throw new MdevError('ENODEV');
        await this.core.unbindDevice(this.#named(d), name);
      },
    });
    this.uevents.addWriteOnly({ dir, subsystem: 'drivers' });
    this.#driverDirs.set(name, dir);
    return dir;
  }

  /**
   * bus_find_device_by_name(): the device on the bus whose name is the
   * written word exactly; ENODEV otherwise, also for one whose device_del()
   * has taken it off the bus (bus_remove_device) while it waits for its last close.
   */
  #named(d: Buffer): CoreDevice {
    const name = writtenWord(d);
    const dev = this.core.device(name);
    if (!dev || dev.uuid !== name || dev.state === 'gone' || (dev.state === 'removing' && dev.releasing)) {
      throw new MdevError('ENODEV', `no mdev device named ${JSON.stringify(name)}`);
    }
    return dev;
  }

  /** The device's driver links: to `driver`, or none. */
  link(rec: BoundRec, driver: string | undefined): void {
    if (driver === undefined) {
      this.unlink(rec);
      return;
    }
    const have = rec.driver;
    if (have && have.name === driver && !have.link.dead && !have.backLink.dead) return;
    this.unlink(rec);
    const drv = this.#ensureDriver(driver);
    rec.driver = { name: driver, link: rec.dir.symlink('driver', drv), backLink: drv.symlink(rec.uuid, rec.dir) };
    let users = this.#users.get(driver);
    if (!users) this.#users.set(driver, (users = new Set()));
    users.add(rec);
  }

  unlink(rec: BoundRec): void {
    if (!rec.driver) return;
    this.#users.get(rec.driver.name)?.delete(rec);
    rec.driver.link.remove();
    rec.driver.backLink.remove();
    rec.driver = undefined;
  }

  /** A plain bus directory (devices/, drivers/ and the bus attributes) for a parent's subsystem. */
  ensureOtherBus(name: string): KDir {
    const existing = this.tree.bus.get(name);
    if (existing instanceof KDir) return existing;
    const b = this.tree.bus.mkdir(name);
    b.mkdir('devices');
    b.mkdir('drivers');
    b.attr('drivers_autoprobe', 0o644, { show: () => '1\n', store: () => {} });
    b.attr('drivers_probe', 0o200, {
      store: () => {
        throw new MdevError('ENODEV');
      },
    });
    this.uevents.addWriteOnly({ dir: b, subsystem: 'bus' });
    return b;
  }
}
