/**
 * A mediated device's life: create and remove (drivers/vfio/mdev/mdev_core.c
 * mdev_device_create / mdev_device_remove, and remove_store's part in
 * mdev_sysfs.c), both profiles. Each step is announced once its fields have
 * changed together (model.ts DeviceStep): a create is added → bound → probed →
 * active, a remove is removing → releasing → unbound → removed.
 */
import type { CoreContext, LockToken } from './context.js';
import { bind, announceVfio, beginRelease, unbind } from './binding.js';
import { MdevError, errorMessage } from './errno.js';
import type { MdevType } from './api.js';
import { checkTenantCapacity } from './capacity.js';
import { faultTarget } from './fault-target.js';
import { DeviceImpl } from './objects.js';

/** mdev_device_create(type, uuid), under the lock. `uuid` is canonical. */
export function createDevice(ctx: CoreContext, type: MdevType, uuid: string): Promise<DeviceImpl> {
  return ctx.locked(token => createLocked(ctx, type, uuid, token));
}

async function createLocked(ctx: CoreContext, type: MdevType, uuid: string, token: LockToken): Promise<DeviceImpl> {
  const t = ctx.liveType(type);
  const parent = t.parent;
  const modern = ctx.modern;
  const existing = ctx.devices.get(uuid);
  // Modern: one global list, checked before capacity. Legacy: only this parent's children.
  if (existing && (modern || existing.parent === parent)) {
    throw new MdevError('EEXIST', `create: ${uuid} already exists`);
  }
  // Capacity another tenant holds (control.ts): refused as the counter or the vendor would.
  if (!existing) checkTenantCapacity(ctx, t);
  let counted = false;
  if (modern && !parent.ops.getAvailable) {
    if (parent.k.available <= 0) throw new MdevError('EUSERS', `create: ${parent.name} has no instances left`);
    parent.k.available--;
    counted = true;
  }
  if (parent.k.state === 'unregistering') {
    if (counted) parent.k.available++;
    throw new MdevError('ENODEV', `create: ${parent.name} is being unregistered`);
  }
  if (existing) {
    // Legacy: device_register fails on /sys/bus/mdev/devices/<uuid> before any uevent.
    throw new MdevError('EEXIST', `create: ${uuid} already exists under ${existing.parent.name}`);
  }

  const dev = new DeviceImpl(uuid, t, modern, counted);
  ctx.devices.set(uuid, dev);
  parent.k.devices.add(dev);
  t.devices.add(dev);
  ctx.publish(dev, 'added');
  ctx.uevent(ctx.uevents.mdev('add', dev.devpath));

  let probed = false;
  try {
    const entry = ctx.drivers.get(ctx.driverNameFor(parent));
    if (entry && entry.state === 'live' && (modern || ctx.autoprobe)) {
      await bind(ctx, dev, entry, token);
      probed = true;
      if (!modern) announceVfio(ctx, dev);
    } else if (modern) {
      throw new MdevError('ENODEV', `create: mdev driver ${parent.ops.driver} is not registered`);
    }
    const ops = parent.ops;
    // An injected fault fails here, in the vendor's place: the same unwinding follows.
    await ctx.faults.hit('create', faultTarget(dev));
    await ctx.call(
      () => ops.create(dev),
      `${parent.name}: create(${uuid})`,
      token,
      () => lateRemove(ctx, dev),
    );
  } catch (e) {
    if (dev.k.boundDriver !== undefined) await unbind(ctx, dev, token, { callRemove: probed, uevent: false });
    release(ctx, dev);
    throw e;
  }
  if (modern && dev.k.boundDriver !== undefined) {
    announceVfio(ctx, dev);
    ctx.uevent(ctx.uevents.mdev('bind', dev.devpath, dev.k.boundDriver));
  }
  dev.k.state = 'active';
  dev.k.typeLinked = true;
  // Legacy: created only now, after the vendor's create. Modern: it has been
  // there since device_add, unless a remove during the create deleted it.
  if (!modern) dev.k.hasRemoveFile = true;
  ctx.publish(dev, 'active');
  return dev;
}

/** A create that timed out has succeeded after all: let the plugin release it. */
function lateRemove(ctx: CoreContext, dev: DeviceImpl): void {
  const ops = dev.parent.ops;
  ctx.log(`${dev.parent.name}: create(${dev.uuid}) completed after its timeout; calling remove`);
  ctx.call(() => ops.remove(dev), `${dev.parent.name}: remove(${dev.uuid}) after late create`).catch(e => ctx.log(errorMessage(e)));
}

/**
 * remove_store after a non-zero value: device_remove_file_self(), then
 * mdev_device_remove().
 */
export async function removeSelf(ctx: CoreContext, dev: DeviceImpl): Promise<void> {
  // device_remove_file_self() fails for a writer that raced past open while
  // another remove is under way: success, no effect.
  if (dev.k.state === 'removing') return;
  if (dev.k.state === 'adding' && ctx.modern) {
    // The file is already deleted when mdev_device_remove finds the device
    // not yet active: the device stays, without `remove`, as in the kernel.
    dev.k.hasRemoveFile = false;
    ctx.publish(dev, 'file-removed');
    throw new MdevError('EAGAIN', `remove: ${dev.uuid} is still being created`);
  }
  await removeDevice(ctx, dev, false);
}

function checkRemovable(dev: DeviceImpl, forced: boolean): void {
  if (dev.k.state === 'gone') throw new MdevError('ENODEV', `remove: ${dev.uuid} no longer exists`);
  if (dev.k.state !== 'active') throw new MdevError('EAGAIN', `remove: ${dev.uuid} is ${dev.k.state}`);
  if (!forced && dev.parent.k.state === 'unregistering') {
    throw new MdevError('ENODEV', `remove: ${dev.parent.name} is being unregistered`);
  }
}

/** The 'removing' step: `remove` and the type links go. */
function startRemove(ctx: CoreContext, dev: DeviceImpl): void {
  dev.k.state = 'removing';
  dev.k.hasRemoveFile = false;
  dev.k.typeLinked = false;
  ctx.publish(dev, 'removing');
}

/**
 * mdev_device_remove. `forced`: the parent is being unregistered (no veto,
 * no ENODEV).
 */
export async function removeDevice(ctx: CoreContext, dev: DeviceImpl, forced: boolean): Promise<void> {
  // Checked before queueing too: a remove racing the device's own create or
  // another remove fails at once, as with the kernel's short-held lock.
  checkRemovable(dev, forced);
  if (!forced) {
    // An injected fault refuses the remove before it starts, so the device stays whole
    // (a parent's unregistration is never refused).
    await ctx.faults.hit('remove', faultTarget(dev));
    checkRemovable(dev, forced);
  }
  const ops = dev.parent.ops;
  const what = `${dev.parent.name}: remove(${dev.uuid})`;
  await ctx.locked(async token => {
    checkRemovable(dev, forced);
    startRemove(ctx, dev);
    if (ctx.modern) {
      // device_del → __device_release_driver, up to the driver's wait.
      beginRelease(ctx, dev);
      return;
    }
    try {
      await ctx.call(
        () => ops.remove(dev),
        what,
        token,
        () => lateLegacyRemove(ctx, dev),
      );
    } catch (e) {
      if (!forced) {
        // 4.10 remove_store re-creates the file after a refusal.
        dev.k.state = 'active';
        dev.k.hasRemoveFile = true;
        dev.k.typeLinked = true;
        ctx.publish(dev, 'restored');
        throw new MdevError('EBUSY', `${what} refused: ${errorMessage(e)}`);
      }
      ctx.log(`${errorMessage(e)} (ignored: parent is being unregistered)`);
    }
    // 4.10: device_unregister → __device_release_driver, up to vfio_mdev's wait.
    beginRelease(ctx, dev);
  });
  await finishRemove(ctx, dev, ctx.modern);
}

/** The rest of a remove once the device is 'removing': the last close, the vendor's remove (modern), unbind, release. */
async function finishRemove(ctx: CoreContext, dev: DeviceImpl, callVendorRemove: boolean): Promise<void> {
  const ops = dev.parent.ops;
  // vfio_unregister_group_dev(): wait, without the lock, for the last close.
  await dev.waitIdle();
  await ctx.locked(async token => {
    if (callVendorRemove && !dev.k.vendorDetached) {
      try {
        await ctx.call(() => ops.remove(dev), `${dev.parent.name}: remove(${dev.uuid})`, token);
      } catch (e) {
        ctx.log(`${errorMessage(e)} (ignored: a remove cannot be vetoed)`);
      }
    }
    if (dev.k.boundDriver !== undefined) await unbind(ctx, dev, token, { callRemove: true, uevent: true });
    release(ctx, dev);
  });
}

/**
 * Legacy: a vendor remove that timed out (the writer got EBUSY, `remove` came
 * back) has completed after all. The vendor has let the device go, so the
 * core finishes the removal rather than keep a device its driver no longer has.
 */
function lateLegacyRemove(ctx: CoreContext, dev: DeviceImpl): void {
  ctx.log(`${dev.parent.name}: remove(${dev.uuid}) completed after its timeout; removing the device`);
  void ctx
    .locked(() => {
      if (dev.k.state !== 'active') return false; // removed or being removed meanwhile
      startRemove(ctx, dev);
      beginRelease(ctx, dev);
      return true;
    })
    .then(go => (go ? finishRemove(ctx, dev, false) : undefined))
    .catch(e => ctx.log(`${dev.parent.name}: finishing the late remove of ${dev.uuid}: ${errorMessage(e)}`));
}

/** device_del + the final put: the device is gone; capacity comes back. */
function release(ctx: CoreContext, dev: DeviceImpl): void {
  dev.k.state = 'gone';
  dev.k.hasRemoveFile = false;
  dev.k.typeLinked = false;
  ctx.devices.delete(dev.uuid);
  dev.parent.k.devices.delete(dev);
  dev.type.devices.delete(dev);
  ctx.publish(dev, 'removed');
  ctx.uevent(ctx.uevents.mdev('remove', dev.devpath));
  if (dev.k.counted) {
    dev.k.counted = false;
    dev.parent.k.available++;
  }
  dev.notifyGone();
}
