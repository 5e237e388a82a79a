/**
 * Capacity building blocks for vendor plugins: what `available_instances`
 * shows for a type and whether one more device of it fits. Usable from any
 * TypeScript plugin as well as from compiled configs:
 *
 * ```ts
 * const cap = new ParentCapacity([
 *   oneTypeAtATime('EINVAL'),                       // NVIDIA time-sliced vGPU
 *   sharedPool(16384, t => fbOf(t), { max: t => maxOf(t) }),
 * ]);
 * const ops: ParentOps = {
 *   ..., getAvailable: t => cap.available(t),
 *   create(dev) { cap.claim(dev); },
 *   remove(dev) { cap.release(dev); },
 * };
 * ```
 *
 * (The kernel core's own per-parent counter needs none of this: set
 * `ParentOps.maxInstances` and the core enforces it with EUSERS.)
 *
 * Types are compared by `type.id`, devices by `uuid`, so claim/release are
 * idempotent and a stray release is harmless.
 */
import { MdevError, type ErrnoName } from '../core/errno.js';

const UINT_MAX = 0xffffffff;

/** The part of MdevType these pieces look at. */
export interface TypeRef {
  readonly id: string;
}
/** The part of MdevDevice these pieces look at. */
export interface DeviceRef<T extends TypeRef = TypeRef> {
  readonly uuid: string;
  readonly type: T;
}

/** Which devices exist on one parent, by type. */
export class DeviceLedger<T extends TypeRef = TypeRef> {
  readonly #devices = new Map<string, T>();
  readonly #perType = new Map<string, number>();

  /** Record a device; false if it was already recorded. */
  add(uuid: string, type: T): boolean {
    if (this.#devices.has(uuid)) return false;
    this.#devices.set(uuid, type);
    this.#perType.set(type.id, (this.#perType.get(type.id) ?? 0) + 1);
    return true;
  }
  /** Forget a device; false if it was not recorded. */
  delete(uuid: string): boolean {
    const type = this.#devices.get(uuid);
    if (!type) return false;
    this.#devices.delete(uuid);
    const n = (this.#perType.get(type.id) ?? 1) - 1;
    if (n > 0) this.#perType.set(type.id, n);
    else this.#perType.delete(type.id);
    return true;
  }
  has(uuid: string): boolean {
    return this.#devices.has(uuid);
  }
  /** Devices in total, or of one type. */
  count(type?: TypeRef): number {
    return type ? (this.#perType.get(type.id) ?? 0) : this.#devices.size;
  }
  /** Ids of the types that have at least one device. */
  typesInUse(): string[] {
    return [...this.#perType.keys()];
  }
  /** The type of every device (one entry per device). */
  *deviceTypes(): IterableIterator<T> {
    yield* this.#devices.values();
  }
}

/**
 * One capacity constraint. `limit` says how many more devices of `type` it
 * allows now (Infinity if it does not constrain that type); a create is
 * refused with `errno` when the limit is below 1.
 */
export interface CapacityRule<T extends TypeRef = TypeRef> {
  readonly errno: ErrnoName;
  limit(type: T, ledger: DeviceLedger<T>): number;
  /** Why it refused (for the error message). */
  explain?(type: T, ledger: DeviceLedger<T>): string;
}

/** Fixed per-type counts: `max(type)` devices of each type, independent of the others. */
export function perTypeMax<T extends TypeRef>(max: (type: T) => number | undefined, errno: ErrnoName = 'ENOSPC'): CapacityRule<T> {
  return {
    errno,
    limit(type, ledger) {
      const m = max(type);
      return m === undefined ? Infinity : m - ledger.count(type);
    },
    explain(type, ledger) {
      return `${type.id}: all ${max(type)} instances in use (${ledger.count(type)} exist)`;
    },
  };
}

/**
 * A shared pool of `size` units (framebuffer MB, ports, GTT space...): a device
 * of type t takes `cost(t)` units; available = floor(free / cost). An optional
 * per-type `max` caps it (max minus the existing devices of that type).
 */
export function sharedPool<T extends TypeRef>(
  size: number,
  cost: (type: T) => number,
  opts: { max?: (type: T) => number | undefined; errno?: ErrnoName } = {},
): CapacityRule<T> {
  const used = (ledger: DeviceLedger<T>): number => {
    let u = 0;
    for (const t of ledger.deviceTypes()) u += cost(t);
    return u;
  };
  return {
    errno: opts.errno ?? 'ENOSPC',
    limit(type, ledger) {
      const c = cost(type);
      let n = c > 0 ? Math.floor((size - used(ledger)) / c) : Infinity;
      const m = opts.max?.(type);
      if (m !== undefined) n = Math.min(n, m - ledger.count(type));
      return n;
    },
    explain(type, ledger) {
      const free = size - used(ledger);
      const m = opts.max?.(type);
      if (m !== undefined && ledger.count(type) >= m) return `${type.id}: all ${m} instances in use`;
      return `${type.id}: needs ${cost(type)} units, ${free} of ${size} free`;
    },
  };
}

/**
 * One type at a time per parent (NVIDIA time-sliced vGPU before vGPU 17): while
 * any device exists, every other type allows 0.
 */
export function oneTypeAtATime<T extends TypeRef>(errno: ErrnoName = 'EINVAL'): CapacityRule<T> {
  return {
    errno,
    limit(type, ledger) {
      const inUse = ledger.typesInUse();
      return inUse.length === 0 || (inUse.length === 1 && inUse[0] === type.id) ? Infinity : 0;
    },
    explain(type, ledger) {
      return `${type.id}: the parent already hosts ${ledger.typesInUse().join(', ')} (one type at a time)`;
    },
  };
}

/** A device count shared by every type of the parent (as the kernel core's counter, but plugin-side). */
export function sharedCount<T extends TypeRef>(max: number, errno: ErrnoName = 'EUSERS'): CapacityRule<T> {
  return {
    errno,
    limit: (_type, ledger) => max - ledger.count(),
    explain: () => `all ${max} instances of the parent in use`,
  };
}

/**
 * A parent's capacity: rules evaluated in order (put the rule whose errno
 * should win first), plus the ledger of its devices.
 */
export class ParentCapacity<T extends TypeRef = TypeRef> {
  readonly ledger = new DeviceLedger<T>();
  readonly rules: readonly CapacityRule<T>[];
  constructor(rules: readonly CapacityRule<T>[]) {
    this.rules = rules;
  }

  /**
   * available_instances: the smallest limit as an integer in [0, UINT_MAX]
   * (the kernel prints it with %u; an unconstrained type shows UINT_MAX).
   */
  available(type: T): number {
    let n = Infinity;
    for (const r of this.rules) n = Math.min(n, r.limit(type, this.ledger));
    if (Number.isNaN(n)) return 0;
    return Math.min(UINT_MAX, Math.max(0, Math.floor(n)));
  }

  /** The first rule that refuses one more device of `type`, if any. */
  refusal(type: T): CapacityRule<T> | undefined {
    return this.rules.find(r => r.limit(type, this.ledger) < 1);
  }

  /** Reserve room for `dev` or throw the refusing rule's errno. Claiming a claimed device is a no-op. */
  claim(dev: DeviceRef<T>): void {
    if (this.ledger.has(dev.uuid)) return;
    const r = this.refusal(dev.type);
    if (r) throw new MdevError(r.errno, r.explain?.(dev.type, this.ledger) ?? `${dev.type.id}: no capacity left`);
    this.ledger.add(dev.uuid, dev.type);
  }

  /** Give `dev`'s room back (no-op if it holds none). */
  release(dev: DeviceRef<T> | string): void {
    this.ledger.delete(typeof dev === 'string' ? dev : dev.uuid);
  }
}
