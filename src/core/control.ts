/**
 * The control plane's operations on the core (docs/control.md): unplug and
 * plug a parent (the vendor unregisters and re-registers it), capacity held
 * by another tenant, and a snapshot of the whole state. Faults are
 * faults.ts; these are the rest.
 */
import type { CoreContext } from './context.js';
import { MdevError, errorMessage } from './errno.js';
import type { Fault } from './faults.js';
import type { ParentImpl, TypeImpl } from './objects.js';
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

/** The vendor's (or the core counter's) count, before another tenant's share. */
function ownAvailable(ctx: CoreContext, type: TypeImpl): number {
  const parent = type.parent;
  const ops = parent.ops;
  if (ops.getAvailable) {
    let n: unknown;
    try {
      n = ops.getAvailable(type);
    } catch (e) {
      ctx.log(`${parent.name}: getAvailable(${type.id}) threw: ${errorMessage(e)}; showing 0`);
      return 0;
    }
    if (typeof n !== 'number' || Number.isNaN(n)) {
      ctx.log(`${parent.name}: getAvailable(${type.id}) returned ${String(n)}, not a number; showing 0`);
      return 0;
    }
    return Math.min(Math.max(0, Math.floor(n)), 0xffffffff); // %u
  }
  if (ctx.modern) return parent.k.available;
  return Math.max(0, (ops.maxInstances ?? 0) - parent.k.devices.size);
}

/**
 * What another tenant holds against `type`: with the core's per-parent
 * counter (or 4.10's maxInstances) the counter is shared by all the parent's
 * types, so is what is held; with the vendor's getAvailable, per type.
 */
function heldAgainst(ctx: CoreContext, type: TypeImpl): number {
  if (type.parent.ops.getAvailable) return ctx.taken.get(type) ?? 0;
  let n = 0;
  for (const t of type.parent.types) n += ctx.taken.get(t) ?? 0;
  return n;
}

/** available_instances: what the vendor or the core counts, less what another tenant holds. */
export function availableInstances(ctx: CoreContext, type: TypeImpl): number {
  return Math.max(0, ownAvailable(ctx, type) - heldAgainst(ctx, type));
}

/**
 * Another tenant's share is spent: a create fails as it would had the tenant
 * created devices itself (EUSERS from the core counter, ENOSPC as the sample
 * vendors refuse), before the vendor is asked.
 */
export function checkTenantCapacity(ctx: CoreContext, type: TypeImpl): void {
  if (ctx.taken.size === 0 || heldAgainst(ctx, type) === 0) return;
  if (availableInstances(ctx, type) > 0) return;
  const errno = type.parent.ops.getAvailable ? 'ENOSPC' : 'EUSERS';
  throw new MdevError(errno, `create: ${type.parent.name}/${type.id} has no instances left (held by another tenant)`);
}

/**
 * Make `type` show `n` available instances by taking capacity (or giving
 * back what was taken) as another tenant would. ERANGE for more than there
 * would be with nothing held.
 */
export function setAvailable(ctx: CoreContext, type: TypeImpl, n: number): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new MdevError('EINVAL', `set-available: ${String(n)} is not a count`);
  const own = ownAvailable(ctx, type);
  const others = heldAgainst(ctx, type) - (ctx.taken.get(type) ?? 0);
  const take = own - others - n;
  if (take < 0) {
    throw new MdevError('ERANGE', `set-available: ${type.id} can show at most ${Math.max(0, own - others)} (nothing else held)`);
  }
  if (take === 0) ctx.taken.delete(type);
  else ctx.taken.set(type, take);
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
