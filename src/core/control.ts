/**
 * The control plane's operations on the core (docs/control.md): unplug and
 * plug a parent (the vendor unregisters and re-registers it) and a snapshot
 * of the whole state. Faults are faults.ts; another tenant's capacity is
 * capacity.ts.
 */
import type { CoreContext } from './context.js';
import { availableInstances } from './capacity.js';
import { MdevError } from './errno.js';
import type { Fault } from './faults.js';
import type { ParentImpl } from './objects.js';
import { reregisterParent, unregisterParent } from './parents.js';

/**
 * mdev_unregister_parent as the vendor calls it on a hot-unplug or a driver
 * unload: the children are removed first (each with its remove uevent), then
 * the parent's MDEV_STATE=unregistered change event (parents.ts). The parent
 * is kept, so that `plug` can register the same one again.
 */
export async function unplugParent(ctx: CoreContext, name: string): Promise<void> {
  const parent = ctx.parents.get(name);
  if (!parent) {
    throw new MdevError('ENODEV', ctx.unplugged.has(name) ? `${name} is already unplugged` : `no parent named ${name}`);
  }
  if (parent.k.state === 'unregistering') throw new MdevError('EBUSY', `${name} is being unregistered`);
  ctx.unplugged.set(name, parent);
  try {
    await unregisterParent(ctx, parent);
  } catch (e) {
    ctx.unplugged.delete(name);
    throw e;
  }
}

/** The vendor registers an unplugged parent again (mdev_register_parent): MDEV_STATE=registered, no devices. */
export async function plugParent(ctx: CoreContext, name: string): Promise<void> {
  const parent = ctx.unplugged.get(name);
  if (!parent) {
    throw new MdevError(
      ctx.parents.has(name) ? 'EEXIST' : 'ENODEV',
      ctx.parents.has(name) ? `${name} is plugged` : `${name} was not unplugged`,
    );
  }
  await reregisterParent(ctx, parent);
  ctx.unplugged.delete(name);
}

export interface ControlState {
  profile: string;
  parents: Array<{
    name: string;
    path: string;
    state: 'live' | 'unregistering' | 'unplugged';
    types: Array<{ id: string; name: string; available: number; heldByTenant: number; devices: string[] }>;
  }>;
  devices: Array<{
    uuid: string;
    parent: string;
    type: string;
    state: string;
    driver: string | null;
    iommuGroup: number | null;
    openCount: number;
  }>;
  groups: Array<{ id: number; devices: string[] }>;
  faults: Fault[];
}

function parentState(ctx: CoreContext, p: ParentImpl, unplugged: boolean): ControlState['parents'][number] {
  return {
    name: p.name,
    path: p.device.path,
    state: unplugged ? 'unplugged' : p.k.state,
    types: p.types.map(t => ({
      id: t.id,
      name: t.name,
      available: unplugged ? 0 : availableInstances(ctx, t),
      heldByTenant: ctx.taken.get(t) ?? 0,
      devices: [...t.devices].map(d => d.uuid),
    })),
  };
}

/** Everything the control plane shows: parents (plugged or not), types, devices, IOMMU groups and pending faults. */
export function controlState(ctx: CoreContext): ControlState {
  const parents = [...ctx.parents.values()].map(p => parentState(ctx, p, false));
  for (const p of ctx.unplugged.values()) if (!ctx.parents.has(p.name)) parents.push(parentState(ctx, p, true));
  return {
    profile: ctx.profile,
    parents,
    devices: [...ctx.devices.values()].map(d => ({
      uuid: d.uuid,
      parent: d.parent.name,
      type: d.type.id,
      state: d.k.state,
      driver: d.k.boundDriver ?? null,
      iommuGroup: d.k.iommuGroup ?? null,
      openCount: d.k.openCount,
    })),
    groups: [...ctx.groupDevice.entries()].map(([id, d]) => ({ id, devices: [d.uuid] })),
    faults: ctx.faults.list(),
  };
}
