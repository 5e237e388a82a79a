/**
 * Bus drivers of the mdev bus (drivers/vfio/mdev/mdev_driver.c
 * mdev_register_driver / mdev_unregister_driver, with drivers/base/dd.c
 * driver_attach / driver_detach).
 */
import type { MdevDriver } from './api.js';
import { announceVfio, bind, detachWhenIdle } from './binding.js';
import type { CoreContext, LockToken } from './context.js';
import { MdevError, errorMessage } from './errno.js';
import { isEntryName } from './names.js';
import { DriverEntry, type Owner } from './objects.js';

export async function registerDriver(ctx: CoreContext, drv: MdevDriver, owner: Owner | undefined): Promise<void> {
  ctx.assertNotUnderLock('registerDriver');
  if (!drv || typeof drv !== 'object' || !isEntryName(drv.name)) {
    throw new MdevError('EINVAL', 'registerDriver: a driver needs a non-empty name');
  }
  if ((drv.probe !== undefined && typeof drv.probe !== 'function') || (drv.remove !== undefined && typeof drv.remove !== 'function')) {
    throw new MdevError('EINVAL', `registerDriver: ${drv.name}: probe and remove must be functions`);
  }
  await ctx.locked(async token => {
    if (ctx.drivers.has(drv.name)) throw new MdevError('EBUSY', `registerDriver: ${drv.name} is already registered`);
    const entry = addDriver(ctx, drv, owner);
    // driver_attach(): bind the devices that have been waiting for it, as
    // bus_add_driver does only while drivers_autoprobe is set.
    if (ctx.autoprobe) await attachWaiting(ctx, entry, token);
    announceDriver(ctx, entry);
  });
}

async function attachWaiting(ctx: CoreContext, entry: DriverEntry, token: LockToken): Promise<void> {
  for (const parent of [...ctx.parents.values()]) {
    if (parent.k.state !== 'live' || ctx.driverNameFor(parent) !== entry.name) continue;
    for (const dev of [...parent.k.devices]) {
      // A device unbound through sysfs (modern) stays unbound: its vendor let it go.
      if (dev.k.state !== 'active' || dev.k.boundDriver !== undefined || entry.state !== 'live' || dev.k.vendorDetached) continue;
      try {
        await bind(ctx, dev, entry, token);
        announceVfio(ctx, dev);
        if (ctx.modern) ctx.uevent(ctx.uevents.mdev('bind', dev.devpath, entry.name));
      } catch (e) {
        ctx.log(`${errorMessage(e)}; ${dev.uuid} stays unbound`);
      }
    }
  }
}

/** Record a driver (also the implicit one a modern parent names). Call under the lock. */
export function addDriver(ctx: CoreContext, drv: MdevDriver, owner: Owner | undefined): DriverEntry {
  const entry = new DriverEntry(drv, owner);
  ctx.drivers.set(entry.name, entry);
  owner?.drivers.add(entry);
  ctx.emitChange({ kind: 'driver-added', driver: entry.name });
  return entry;
}

/** bus_add_driver()'s last step, after driver_attach and the driver's files: its kobject's add. */
export function announceDriver(ctx: CoreContext, entry: DriverEntry): void {
  ctx.uevent(ctx.uevents.driver('add', `/bus/mdev/drivers/${entry.name}`));
}

/** Every caller awaits the same unregistration. */
export async function unregisterDriver(ctx: CoreContext, name: string): Promise<void> {
  ctx.assertNotUnderLock('unregisterDriver');
  const entry = ctx.drivers.get(name);
  if (!entry) throw new MdevError('ENODEV', `unregisterDriver: ${String(name)} is not registered`);
  entry.unregistering ??= detachAll(ctx, entry);
  return entry.unregistering;
}

async function detachAll(ctx: CoreContext, entry: DriverEntry): Promise<void> {
  await ctx.locked(() => {
    entry.state = 'unregistering';
  });
  for (const dev of [...entry.devices]) await detachWhenIdle(ctx, dev, () => entry.devices.has(dev));
  await ctx.locked(() => {
    ctx.drivers.delete(entry.name);
    entry.owner?.drivers.delete(entry);
    ctx.emitChange({ kind: 'driver-removed', driver: entry.name });
    // bus_remove_driver(): the last kobject_put, after driver_detach, sends the remove.
    ctx.uevent(ctx.uevents.driver('remove', `/bus/mdev/drivers/${entry.name}`));
  });
}
