/**
 * Parent devices (drivers/vfio/mdev/mdev_core.c mdev_register_parent /
 * mdev_unregister_parent; mdev_register_device in 4.10): registration, the
 * MDEV_STATE change uevents, and unregistration, which removes the children
 * first.
 */
import type { Parent, ParentDeviceSpec, ParentOps } from './api.js';
import type { CoreContext, LockToken } from './context.js';
import { addDriver, announceDriver } from './drivers.js';
import { MdevError, errorMessage } from './errno.js';
import { removeDevice } from './lifecycle.js';
import { ParentImpl, normalisePath, type Owner } from './objects.js';
import { asShowResult } from './show.js';
import { parseUeventVars } from './uevents.js';
import { pciUeventVars } from './pci-uevent.js';
import { validateParent } from './validate.js';

export async function registerParent(
  ctx: CoreContext,
  device: ParentDeviceSpec,
  ops: ParentOps,
  owner: Owner | undefined,
): Promise<Parent> {
  ctx.assertNotUnderLock('registerDevice');
  validateParent(device, ops, ctx.profile);
  return ctx.locked(async token => {
    const path = normalisePath(device.path);
    const name = path.slice(path.lastIndexOf('/') + 1);
    const clash = ctx.parents.get(name);
    if (clash) {
      throw new MdevError(
        'EEXIST',
        clash.device.path === path
          ? `registerDevice: ${path} is already a parent`
          : `registerDevice: a parent named ${name} exists (${clash.device.path})`,
      );
    }
    const parent = new ParentImpl(onPciDevice(ctx, device, path, name), ops, owner);
    await attachParent(ctx, parent, token);
    return parent;
  });
}

/**
 * A parent on a PCI function that pci-devices.ts holds (a VF whose driver
 * registers it) is that function: its bus, driver and IOMMU group, and no
 * identity files of its own (the function has them).
 */
function onPciDevice(ctx: CoreContext, device: ParentDeviceSpec, path: string, name: string): ParentDeviceSpec {
  const pci = ctx.pciDevices.get(name);
  if (!pci) return device;
  if (pci.device.path !== path) throw new MdevError('EEXIST', `registerDevice: PCI device ${name} is at ${pci.device.path}`);
  return { path, typePrefix: device.typePrefix, subsystem: { bus: 'pci' }, driver: pci.driver, iommuGroup: pci.device.iommuGroup };
}

async function attachParent(ctx: CoreContext, parent: ParentImpl, token: LockToken): Promise<void> {
  const { device, ops } = parent;
  const owner = parent.k.owner;
  if (device.iommuGroup !== undefined) ctx.groups.reserve(device.iommuGroup);
  // The vendor's mdev_driver, which a real one registers before its parent (no device waits for it yet).
  if (ctx.modern && !ctx.drivers.has(ops.driver)) announceDriver(ctx, addDriver(ctx, { name: ops.driver }, owner));
  ctx.parents.set(parent.name, parent);
  owner?.parents.add(parent);
  ctx.emitChange({ kind: 'parent-added', parent });
  const subsystem = parent.subsystem;
  // A device with neither bus nor class sends no uevents at all.
  if (ctx.modern && subsystem) {
    ctx.uevent(ctx.uevents.parentState(parent.devpath, subsystem, 'registered', await parentUeventVars(ctx, parent, token)));
  }
}

/**
 * The vendor registers a parent it unregistered (the control plane's plug):
 * the same record, so the plugin's Parent handle stays valid, with fresh
 * kernel state (mdev_register_parent starts the counter at max_instances).
 */
export async function reregisterParent(ctx: CoreContext, parent: ParentImpl): Promise<void> {
  ctx.assertNotUnderLock('registerDevice');
  await parent.k.unregistering;
  return ctx.locked(async token => {
    const clash = ctx.parents.get(parent.name);
    if (clash) throw new MdevError('EEXIST', `registerDevice: a parent named ${parent.name} exists (${clash.device.path})`);
    parent.k.state = 'live';
    parent.k.unregistering = undefined;
    parent.k.available = parent.ops.getAvailable ? 0 : (parent.ops.maxInstances ?? 0);
    await attachParent(ctx, parent, token);
  });
}

/**
 * dev_uevent's variables for the parent: what its `uevent` file shows (a
 * vendor's file, e.g. pci_uevent's PCI_* and MODALIAS after DRIVER), or else
 * the driver core's own DRIVER line, as the sysfs layer renders it.
 */
async function parentUeventVars(ctx: CoreContext, parent: ParentImpl, token: LockToken): Promise<Array<[string, string]>> {
  const pci = ctx.pciDevices.get(parent.name);
  if (pci) return pciUeventVars(ctx, pci, token);
  const fallback: Array<[string, string]> = parent.device.driver !== undefined ? [['DRIVER', parent.device.driver]] : [];
  const attr = (parent.device.attrs ?? [])
    .filter(g => !g.name)
    .flatMap(g => g.attrs)
    .find(a => a.name === 'uevent');
  const show = attr?.show;
  if (!attr || !show) return fallback;
  try {
    const text = asShowResult(await ctx.call(() => show.call(attr, parent), `${parent.name}: uevent show`, token), 'uevent');
    return parseUeventVars(typeof text === 'string' ? text : Buffer.from(text).toString('utf8'));
  } catch (e) {
    ctx.log(`${parent.name}: uevent variables: ${errorMessage(e)}`);
    return fallback;
  }
}

function resolveParent(ctx: CoreContext, p: Parent | string): ParentImpl {
  const name = typeof p === 'string' ? p : p?.name;
  const parent = typeof name === 'string' ? ctx.parents.get(name) : undefined;
  if (!parent || (typeof p !== 'string' && p !== parent)) {
    throw new MdevError('ENODEV', `unregisterDevice: ${String(name)} is not a registered parent`);
  }
  return parent;
}

/** Every caller awaits the same unregistration. */
export async function unregisterParent(ctx: CoreContext, p: Parent | string): Promise<void> {
  ctx.assertNotUnderLock('unregisterDevice');
  const parent = resolveParent(ctx, p);
  parent.k.unregistering ??= removeParent(ctx, parent);
  return parent.k.unregistering;
}

async function removeParent(ctx: CoreContext, parent: ParentImpl): Promise<void> {
  // Taking the lock waits out a create in progress; later ones get ENODEV.
  const children = await ctx.locked(() => {
    parent.k.state = 'unregistering';
    return [...parent.k.devices];
  });
  for (const dev of children) {
    if (dev.k.state === 'active') {
      try {
        await removeDevice(ctx, dev, true);
      } catch (e) {
        ctx.log(`unregisterDevice ${parent.name}: ${errorMessage(e)}`);
      }
    }
    await dev.waitGone(); // one a user was already removing
  }
  await ctx.locked(async token => {
    const vars = ctx.modern && parent.subsystem ? await parentUeventVars(ctx, parent, token) : [];
    ctx.parents.delete(parent.name);
    if (parent.device.iommuGroup !== undefined) ctx.groups.unreserve(parent.device.iommuGroup);
    parent.k.owner?.parents.delete(parent);
    ctx.emitChange({ kind: 'parent-removed', parent });
    const subsystem = parent.subsystem;
    if (ctx.modern && subsystem) {
      ctx.uevent(ctx.uevents.parentState(parent.devpath, subsystem, 'unregistered', vars));
    }
  });
}
