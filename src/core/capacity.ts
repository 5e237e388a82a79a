/**
 * Capacity another tenant holds (the control plane's set-available,
 * docs/control.md): what available_instances shows and what a create is
 * refused for, kept in agreement.
 */
import type { CoreContext } from './context.js';
import { MdevError, errorMessage } from './errno.js';
import type { TypeImpl } from './objects.js';

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
