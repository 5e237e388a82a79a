/**
 * Binding changes that user space asks for by device name, as the mdev bus
 * answers them (drivers/base/bus.c bind_store, unbind_store,
 * drivers_probe_store; drivers/base/dd.c device_driver_detach).
 *
 * Today's mdev bus matches no driver (drivers/vfio/mdev/mdev_driver.c
 * mdev_match returns 0; mdev_device_create attaches its driver explicitly),
 * so `bind` always fails with ENODEV and `drivers_probe` binds nothing. 4.10's
 * had no match function, so vfio_mdev could be unbound and bound again.
 * `unbind` detaches the driver in both: what the probe made goes away (the
 * VFIO objects, the IOMMU group; modern: the vendor's remove runs), and the
 * device stays, still removable.
 */
import { announceVfio, bind, detachWhenIdle } from './binding.js';
import type { CoreContext } from './context.js';
import { MdevError, errorMessage } from './errno.js';
import type { DeviceImpl } from './objects.js';

/** unbind_store: ENODEV unless `dev` is bound to `driver`. Waits, like the driver's remove, for the last VFIO close. */
export async function unbindByName(ctx: CoreContext, dev: DeviceImpl, driver: string): Promise<void> {
  if (dev.k.state !== 'active' || dev.k.boundDriver !== driver)
    throw new MdevError('ENODEV', `unbind: ${dev.uuid} is not bound to ${driver}`);
  await detachWhenIdle(ctx, dev, () => dev.k.state === 'active' && dev.k.boundDriver === driver, { vendorRemove: ctx.modern });
}

/**
 * bind_store. Modern: mdev_match() refuses every driver, so ENODEV. Legacy
 * (4.10 bind_store): only an unbound device, then driver_probe_device(); a
 * failed probe is ENODEV too.
 */
export async function bindByName(ctx: CoreContext, dev: DeviceImpl, driver: string): Promise<void> {
  if (ctx.modern) throw new MdevError('ENODEV', `bind: the mdev bus matches no driver to ${dev.uuid}`);
  const entry = ctx.drivers.get(driver);
  await ctx.locked(async token => {
    if (!entry || entry.state !== 'live' || dev.k.state !== 'active' || dev.k.boundDriver !== undefined) {
      throw new MdevError('ENODEV', `bind: ${dev.uuid} cannot be bound to ${driver}`);
    }
    try {
      await bind(ctx, dev, entry, token);
    } catch (e) {
      throw new MdevError('ENODEV', `bind: probe of ${dev.uuid} failed: ${errorMessage(e)}`);
    }
    announceVfio(ctx, dev);
  });
}

/**
 * drivers_probe_store: attach a driver to an unbound device if one matches.
 * Modern: none ever does. Legacy: vfio_mdev, when it is registered; a probe
 * that fails leaves the device unbound and the write still succeeds.
 */
export async function probeByName(ctx: CoreContext, dev: DeviceImpl): Promise<void> {
  if (ctx.modern || dev.k.boundDriver !== undefined || dev.k.state !== 'active') return;
  const entry = ctx.drivers.get(ctx.driverNameFor(dev.parent));
  if (!entry || entry.state !== 'live') return;
  await ctx.locked(async token => {
    if (dev.k.boundDriver !== undefined || dev.k.state !== 'active') return;
    try {
      await bind(ctx, dev, entry, token);
      announceVfio(ctx, dev);
    } catch (e) {
      ctx.log(`drivers_probe: ${dev.uuid} stays unbound: ${errorMessage(e)}`);
    }
  });
}
