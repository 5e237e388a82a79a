/**
 * Binding a mediated device to its bus driver, and what the bind brings
 * (drivers/base/dd.c really_probe / __device_release_driver, with the VFIO
 * objects of drivers/vfio/group.c and vfio_main.c).
 *
 * A bind allocates the device's IOMMU group and its VFIO objects' numbers,
 * announces the device as 'bound' (driver_sysfs_add() comes before the
 * probe), then calls the driver's probe. announceVfio() announces 'probed'
 * (the VFIO objects and, modern, the driver's files appear) and sends the
 * objects' `add` uevents where the kernel creates them: in the legacy profile
 * right after vfio_mdev's probe, in the modern one after the vendor's probe
 * (its create), which is where vfio_register_emulated_iommu_dev() runs.
 */
import type { CoreContext, LockToken } from './context.js';
import { errorMessage } from './errno.js';
import { VFIO_DEV_MAJOR, VFIO_GROUP_MAJOR } from './model.js';
import type { DeviceImpl, DriverEntry } from './objects.js';
import type { Uevent } from './api.js';

/** Attach `dev` to `entry`: IOMMU group, VFIO objects, driver, then probe. A failed probe is undone. */
export async function bind(ctx: CoreContext, dev: DeviceImpl, entry: DriverEntry, token: LockToken): Promise<void> {
  const group = ctx.groups.allocate();
  dev.k.iommuGroup = group;
  ctx.groupDevice.set(group, dev);
  dev.k.vfioGroupMinor = ctx.vfioGroupIda.allocate();
  // The vfio-dev class is today's kernel's (vfio_device_add); 4.10 had none.
  if (ctx.modern) dev.k.vfioDevIndex = ctx.vfioDevIda.allocate();
  dev.k.boundDriver = entry.name;
  entry.devices.add(dev);
  ctx.publish(dev, 'bound');
  const drv = entry.drv;
  const probe = drv.probe;
  if (!probe) return;
  try {
    await ctx.call(
      () => probe.call(drv, dev),
      `${entry.name}: probe(${dev.uuid})`,
      token,
      () => {
        const remove = drv.remove;
        if (remove) {
          ctx.call(() => remove.call(drv, dev), `${entry.name}: remove(${dev.uuid}) after late probe`).catch(e => ctx.log(errorMessage(e)));
        }
      },
    );
  } catch (e) {
    // really_probe() failure: driver_sysfs_remove(), no remove, no unbind event.
    dev.k.boundDriver = undefined;
    entry.devices.delete(dev);
    releaseVfio(ctx, dev);
    ctx.publish(dev, 'unbound');
    releaseGroup(ctx, dev);
    throw e;
  }
}

/**
 * The probe has completed: the 'probed' step, then the `add` uevents of the
 * device's VFIO objects. Modern: the vendor's probe (its create) ends in
 * vfio_register_emulated_iommu_dev(), which makes the group char device
 * (vfio_create_group, SUBSYSTEM=vfio), then vfio-dev/vfio<k>
 * (vfio_device_add, SUBSYSTEM=vfio-dev); really_probe() then adds the
 * driver's dev_groups, all before the mdev's `bind`. Legacy (4.10):
 * vfio_mdev_probe() → vfio_add_group_dev() makes only the group char device.
 */
export function announceVfio(ctx: CoreContext, dev: DeviceImpl): void {
  const group = dev.k.iommuGroup;
  const minor = dev.k.vfioGroupMinor;
  const k = dev.k.vfioDevIndex;
  if (dev.k.vfioAnnounced || group === undefined || minor === undefined) return;
  dev.k.vfioAnnounced = true;
  ctx.publish(dev, 'probed');
  ctx.uevent(ctx.uevents.chardev('add', `/devices/virtual/vfio/${group}`, 'vfio', VFIO_GROUP_MAJOR, minor, `vfio/${group}`));
  if (k !== undefined) {
    ctx.uevent(ctx.uevents.chardev('add', `${dev.devpath}/vfio-dev/vfio${k}`, 'vfio-dev', VFIO_DEV_MAJOR, k, `vfio/devices/vfio${k}`));
  }
}

/**
 * Detach `dev` from its driver. driver_sysfs_remove() comes before the
 * driver's remove, whose vfio_unregister_group_dev() removes vfio-dev/vfio<k>
 * and then the group char device, and releases the IOMMU group; the mdev's
 * `unbind` uevent comes last.
 */
export async function unbind(
  ctx: CoreContext,
  dev: DeviceImpl,
  token: LockToken,
  opts: { callRemove: boolean; uevent: boolean; vendorRemove?: boolean },
): Promise<void> {
  const entry = ctx.drivers.get(dev.k.boundDriver!);
  dev.k.boundDriver = undefined;
  dev.k.releasing = false;
  entry?.devices.delete(dev);
  const events = releaseVfio(ctx, dev);
  ctx.publish(dev, 'unbound');
  for (const ev of events) ctx.uevent(ev);
  if (opts.vendorRemove) {
    // Modern, an unbind through sysfs: mdev_remove → the vendor's remove, once;
    // the device's later removal finds no driver and calls nothing.
    dev.k.vendorDetached = true;
    const ops = dev.parent.ops;
    try {
      await ctx.call(() => ops.remove(dev), `${dev.parent.name}: remove(${dev.uuid})`, token);
    } catch (e) {
      ctx.log(`${errorMessage(e)} (ignored: a driver remove cannot fail)`);
    }
  }
  const remove = entry?.drv.remove;
  if (opts.callRemove && entry && remove) {
    try {
      await ctx.call(() => remove.call(entry.drv, dev), `${entry.name}: remove(${dev.uuid})`, token);
    } catch (e) {
      ctx.log(`${errorMessage(e)} (ignored: a driver remove cannot fail)`);
    }
  }
  releaseGroup(ctx, dev);
  if (opts.uevent && ctx.modern) ctx.uevent(ctx.uevents.mdev('unbind', dev.devpath));
}

/**
 * What __device_release_driver() (drivers/base/dd.c) has done by the time the
 * driver's remove waits for the last close: driver_sysfs_remove() took the
 * `driver` links, device_remove() the driver's attribute groups, and, in
 * today's kernel, vfio_unregister_group_dev() has already deleted
 * vfio-dev/vfio<k> (vfio_device_del(), its `remove` uevent) before it waits.
 * The driver is still the device's (`DRIVER=` in its uevent: dev_uevent()
 * reads dev->driver without the device lock), and the group char device and
 * the IOMMU group stay until after the wait. Call under the lock.
 */
export function beginRelease(ctx: CoreContext, dev: DeviceImpl): void {
  if (dev.k.boundDriver === undefined || dev.k.releasing) return;
  dev.k.releasing = true;
  const events = ctx.modern ? releaseVfioDev(ctx, dev) : [];
  ctx.publish(dev, 'releasing');
  for (const ev of events) ctx.uevent(ev);
}

/**
 * Detach `dev` from its driver once its VFIO device is idle, as a driver's
 * remove does (vfio_unregister_group_dev() waits for the last close; no new
 * opens meanwhile). `stillBound` is checked again under the lock: someone
 * else may have been quicker.
 */
export async function detachWhenIdle(
  ctx: CoreContext,
  dev: DeviceImpl,
  stillBound: () => boolean,
  opts: { vendorRemove?: boolean } = {},
): Promise<void> {
  dev.k.blockOpens++;
  try {
    await ctx.locked(() => {
      if (stillBound()) beginRelease(ctx, dev);
    });
    await dev.waitIdle();
    await ctx.locked(async token => {
      if (stillBound()) await unbind(ctx, dev, token, { callRemove: true, uevent: true, ...opts });
    });
  } finally {
    dev.k.blockOpens--;
  }
}

/** Free vfio-dev/vfio<k>'s index; returns its `remove` uevent if its `add` was sent. */
function releaseVfioDev(ctx: CoreContext, dev: DeviceImpl): Uevent[] {
  const k = dev.k.vfioDevIndex;
  if (k === undefined) return [];
  dev.k.vfioDevIndex = undefined;
  ctx.vfioDevIda.free(k);
  if (!dev.k.vfioAnnounced) return [];
  return [ctx.uevents.chardev('remove', `${dev.devpath}/vfio-dev/vfio${k}`, 'vfio-dev', VFIO_DEV_MAJOR, k, `vfio/devices/vfio${k}`)];
}

/** Free the device's VFIO object ids; returns their `remove` uevents (if their `add`s were sent), in kernel order. */
function releaseVfio(ctx: CoreContext, dev: DeviceImpl): Uevent[] {
  const events = releaseVfioDev(ctx, dev);
  const announced = dev.k.vfioAnnounced;
  dev.k.vfioAnnounced = false;
  const minor = dev.k.vfioGroupMinor;
  const group = dev.k.iommuGroup;
  if (minor !== undefined) {
    dev.k.vfioGroupMinor = undefined;
    ctx.vfioGroupIda.free(minor);
    if (announced && group !== undefined) {
      events.push(ctx.uevents.chardev('remove', `/devices/virtual/vfio/${group}`, 'vfio', VFIO_GROUP_MAJOR, minor, `vfio/${group}`));
    }
  }
  return events;
}

/** iommu_group_remove_device + the group's release. */
function releaseGroup(ctx: CoreContext, dev: DeviceImpl): void {
  const group = dev.k.iommuGroup;
  if (group === undefined) return;
  dev.k.iommuGroup = undefined;
  ctx.groupDevice.delete(group);
  ctx.groups.free(group);
  ctx.emitChange({ kind: 'group-removed', group });
}
