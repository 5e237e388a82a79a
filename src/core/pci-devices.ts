/**
 * PCI functions and SR-IOV (drivers/pci/iov.c): a PF a plugin adds, and the
 * VFs the core adds and removes when `sriov_numvfs` is written, in the
 * kernel's order:
 *
 * - enable (sriov_enable → sriov_add_vfs → pci_iov_add_virtfn, VF 0 first):
 *   device_add (`add`), the `virtfn<i>` and `physfn` links
 *   (pci_iov_sysfs_link), then the driver bind (pci_bus_add_device:
 *   `driver` link, probe, `bind`); after the last VF, the PF's `change`.
 * - disable (sriov_disable → sriov_del_vfs → pci_iov_remove_virtfn, VF 0
 *   first): the links go, the driver unbinds (remove, `unbind`), then
 *   device_del (`remove`). No event for the PF.
 *
 * The store's rules are sriov_numvfs_store's, in its order: ERANGE above
 * TotalVFs, nothing to do for the current value, ENOENT without a driver
 * with sriov_configure, EBUSY from one non-zero value to another; the
 * driver's sriov_configure may refuse. Changes are announced after the
 * fields change and before their uevents (model.ts), so sriov_numvfs already
 * reads the new count when the PF's `change` arrives.
 */
import type { PciDevice, PciDeviceSpec } from './api.js';
import { vfAddress } from './api/pci.js';
import type { CoreContext } from './context.js';
import { MdevError, errorMessage } from './errno.js';
import { isEntryName } from './names.js';
import { normalisePath, type Owner } from './objects.js';
import { unregisterParent } from './parents.js';
import { PciDeviceImpl } from './pci-objects.js';
import { pciUeventVars } from './pci-uevent.js';

function invalid(msg: string): never {
  throw new MdevError('EINVAL', `addPciDevice: ${msg}`);
}

const u16 = (n: unknown): boolean => Number.isSafeInteger(n) && (n as number) >= 0 && (n as number) <= 0xffff;

function validate(spec: PciDeviceSpec): void {
  if (!spec || typeof spec !== 'object') invalid('no device');
  const path = typeof spec.path === 'string' ? normalisePath(spec.path) : '';
  if (path === '' || path.split('/').some(seg => !isEntryName(seg))) invalid(`bad path ${JSON.stringify(spec.path)}`);
  if (spec.driver !== undefined && !isEntryName(spec.driver)) invalid('driver must be a name');
  if (spec.iommuGroup !== undefined && !(Number.isSafeInteger(spec.iommuGroup) && spec.iommuGroup >= 0)) {
    invalid('iommuGroup must be a non-negative integer');
  }
  const s = spec.sriov;
  if (s === undefined) return;
  if (!(u16(s.totalVfs) && s.totalVfs >= 1)) invalid('sriov.totalVfs must be 1 to 65535');
  if (!(u16(s.offset) && s.offset >= 1) || !u16(s.stride) || (s.totalVfs > 1 && s.stride === 0)) {
    invalid('sriov.offset must be 1 to 65535 and sriov.stride non-zero (sriov_init: -EIO otherwise)');
  }
  if (!u16(s.vfDevice)) invalid('sriov.vfDevice must be a 16-bit device id');
  if (typeof s.vf !== 'function') invalid('sriov.vf must be a function');
  if (s.configure !== undefined && typeof s.configure !== 'function') invalid('sriov.configure must be a function');
  if (s.numVfs !== undefined && !(Number.isSafeInteger(s.numVfs) && s.numVfs >= 0 && s.numVfs <= s.totalVfs)) {
    invalid('sriov.numVfs must be 0 to totalVfs');
  }
  // Every VF address must exist (virtfn_bus beyond bus ff fails sriov_enable).
  vfAddress(path.slice(path.lastIndexOf('/') + 1), s.offset, s.stride, s.totalVfs - 1);
}

async function send(ctx: CoreContext, dev: PciDeviceImpl, action: 'add' | 'remove' | 'bind' | 'unbind' | 'change'): Promise<void> {
  ctx.uevent(ctx.uevents.device(action, dev.devpath, 'pci', await pciUeventVars(ctx, dev)));
}

function announce(ctx: CoreContext, dev: PciDeviceImpl): void {
  ctx.emitChange({ kind: 'pci', device: dev });
}

export async function addPciDevice(ctx: CoreContext, spec: PciDeviceSpec, owner: Owner | undefined): Promise<PciDevice> {
  validate(spec);
  const dev = new PciDeviceImpl(spec, undefined, undefined, undefined, owner);
  if (ctx.pciDevices.has(dev.name) || ctx.parents.has(dev.name)) throw new MdevError('EEXIST', `addPciDevice: ${dev.name} exists`);
  if (spec.iommuGroup !== undefined) ctx.groups.reserve(spec.iommuGroup);
  dev.driver = spec.driver;
  ctx.pciDevices.set(dev.name, dev);
  owner?.pciDevices.add(dev);
  announce(ctx, dev);
  // VFs enabled before anyone listens (at boot): added and probed without uevents.
  const n = spec.sriov?.numVfs ?? 0;
  if (n > 0) await dev.lock.run(() => enable(ctx, dev, n, false));
  return dev;
}

/** The PF's VFs go first (with their events, as the driver's pci_disable_sriov on unload), then the device. */
export async function removePciDevice(ctx: CoreContext, p: PciDevice | string): Promise<void> {
  const dev = ctx.pciDevices.get(typeof p === 'string' ? p : p?.name);
  if (!dev || (typeof p !== 'string' && p !== dev) || dev.physfn) {
    throw new MdevError('ENODEV', `removePciDevice: ${String(typeof p === 'string' ? p : p?.name)} is not an added PCI device`);
  }
  await dev.lock.run(async () => {
    if (dev.state === 'gone') return;
    await disable(ctx, dev, true);
    await unregisterParentsOn(ctx, dev);
    dev.state = 'gone';
    ctx.pciDevices.delete(dev.name);
    dev.owner?.pciDevices.delete(dev);
    if (dev.device.iommuGroup !== undefined) ctx.groups.unreserve(dev.device.iommuGroup);
    announce(ctx, dev);
  });
}

/** sriov_numvfs_store(pf, n), after the sysfs layer's kstrtou16. */
export async function setNumVfs(ctx: CoreContext, pf: PciDeviceImpl, n: number): Promise<void> {
  const s = pf.sriov;
  if (!s || ctx.pciDevices.get(pf.name) !== pf) throw new MdevError('ENODEV', `${pf.name} has no SR-IOV capability`);
  if (!(Number.isSafeInteger(n) && n >= 0)) throw new MdevError('EINVAL', 'sriov_numvfs: not a number');
  if (n > s.totalVfs) throw new MdevError('ERANGE', `sriov_numvfs: ${n} > sriov_totalvfs ${s.totalVfs}`);
  await pf.lock.run(async () => {
    if (n === pf.numVfs) return;
    const configure = s.configure;
    if (pf.driver === undefined || !configure) {
      throw new MdevError('ENOENT', `${pf.name}: driver does not support SRIOV configuration via sysfs`);
    }
    if (n !== 0 && pf.numVfs !== 0) {
      throw new MdevError('EBUSY', `${pf.name}: ${pf.numVfs} VFs already enabled. Disable before enabling ${n} VFs`);
    }
    await ctx.call(() => configure.call(s, pf, n), `${pf.name}: sriov_configure(${n})`);
    if (n === 0) await disable(ctx, pf, true);
    else await enable(ctx, pf, n, true);
  });
}

/** sriov_drivers_autoprobe_store: whether VFs added from now on are probed. */
export function setVfAutoprobe(ctx: CoreContext, pf: PciDeviceImpl, on: boolean): void {
  pf.autoprobe = on;
  announce(ctx, pf);
}

async function enable(ctx: CoreContext, pf: PciDeviceImpl, n: number, loud: boolean): Promise<void> {
  const added: number[] = [];
  try {
    for (let i = 0; i < n; i++) {
      await addVf(ctx, pf, i, loud);
      added.push(i);
    }
  } catch (e) {
    // sriov_add_vfs: a failed VF removes the ones before it.
    for (const i of added.reverse()) await removeVf(ctx, pf, i, loud);
    throw e;
  }
  pf.numVfs = n;
  announce(ctx, pf);
  if (loud) await send(ctx, pf, 'change');
}

async function disable(ctx: CoreContext, pf: PciDeviceImpl, loud: boolean): Promise<void> {
  if (pf.numVfs === 0) return;
  for (let i = 0; i < pf.numVfs; i++) await removeVf(ctx, pf, i, loud);
  pf.numVfs = 0;
  announce(ctx, pf);
}

async function addVf(ctx: CoreContext, pf: PciDeviceImpl, i: number, loud: boolean): Promise<void> {
  const s = pf.sriov!;
  const address = vfAddress(pf.name, s.offset, s.stride, i);
  const spec = await ctx.call(() => s.vf.call(s, pf, i, address), `${pf.name}: VF ${i} spec`);
  const under = pf.device.path.slice(0, pf.device.path.lastIndexOf('/'));
  const vf = new PciDeviceImpl({ ...spec, path: `${under}/${address}` }, pf, i, spec, pf.owner);
  if (ctx.pciDevices.has(vf.name) || ctx.parents.has(vf.name)) throw new MdevError('EEXIST', `VF ${address} exists`);
  if (spec.iommuGroup !== undefined) ctx.groups.reserve(spec.iommuGroup);
  ctx.pciDevices.set(vf.name, vf);
  pf.vfs.set(i, vf);
  // pci_device_add → device_add
  announce(ctx, vf);
  if (loud) await send(ctx, vf, 'add');
  // pci_iov_sysfs_link
  vf.linked = true;
  announce(ctx, vf);
  announce(ctx, pf);
  // pci_bus_add_device → device_attach, if the PF lets VFs probe (pci_dev->match_driver, sriov_drivers_autoprobe)
  if (spec.driver === undefined || !pf.autoprobe) return;
  vf.driver = spec.driver;
  announce(ctx, vf);
  const probe = spec.probe;
  if (probe) {
    try {
      await ctx.call(() => probe.call(spec, vf), `${vf.name}: ${spec.driver} probe`);
    } catch (e) {
      ctx.log(`${vf.name}: ${spec.driver} probe failed: ${errorMessage(e)}`);
      await unregisterParentsOn(ctx, vf);
      vf.driver = undefined;
      announce(ctx, vf);
      return;
    }
  }
  if (loud) await send(ctx, vf, 'bind');
}

async function removeVf(ctx: CoreContext, pf: PciDeviceImpl, i: number, loud: boolean): Promise<void> {
  const vf = pf.vfs.get(i);
  if (!vf) return;
  vf.linked = false;
  announce(ctx, vf);
  announce(ctx, pf);
  if (vf.driver !== undefined) {
    const remove = vf.vfSpec?.remove;
    if (remove) {
      try {
        await ctx.call(() => remove.call(vf.vfSpec, vf), `${vf.name}: ${vf.driver} remove`);
      } catch (e) {
        ctx.log(`${vf.name}: ${vf.driver} remove: ${errorMessage(e)}`);
      }
    }
    await unregisterParentsOn(ctx, vf);
    vf.driver = undefined;
    announce(ctx, vf);
    if (loud) await send(ctx, vf, 'unbind');
  }
  vf.state = 'gone';
  pf.vfs.delete(i);
  ctx.pciDevices.delete(vf.name);
  if (vf.device.iommuGroup !== undefined) ctx.groups.unreserve(vf.device.iommuGroup);
  announce(ctx, vf);
  if (loud) await send(ctx, vf, 'remove');
}

/** A parent the driver left on a function that goes is unregistered with it (mdev_unregister_parent). */
async function unregisterParentsOn(ctx: CoreContext, dev: PciDeviceImpl): Promise<void> {
  const parent = ctx.parents.get(dev.name);
  if (!parent) return;
  try {
    await unregisterParent(ctx, parent);
  } catch (e) {
    ctx.log(`${dev.name}: ${errorMessage(e)}`);
  }
}
