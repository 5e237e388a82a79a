/**
 * Injected faults (the control plane's `fail` and `delay`): the next N calls
 * of an operation that match a filter fail with an errno, or wait first, in
 * the vendor's place. The core consults the table just before it would call
 * the vendor (create, open), before it starts a remove, and the sysfs layer
 * before a vendor attribute's show or store; so a failure takes the path a
 * vendor's own failure takes and leaves nothing half-made.
 */
import { MdevError, isErrnoName, type ErrnoName } from './errno.js';

export const FAULT_OPS = ['create', 'remove', 'open', 'show', 'store'] as const;
export type FaultOp = (typeof FAULT_OPS)[number];

/** What a call concerns: the filters a fault may name. */
export interface FaultTarget {
  parent?: string;
  type?: string;
  uuid?: string;
}

export interface FaultSpec extends FaultTarget {
  op: FaultOp;
  /** Fail with this errno (after the delay, if both are given). */
  errno?: ErrnoName;
  /** Wait this long (ms) before the call goes on (or fails). */
  delayMs?: number;
  /** How many matching calls it applies to; default 1. */
  count?: number;
}

export interface Fault extends FaultSpec {
  readonly id: number;
  /** Matching calls it still applies to. */
  remaining: number;
}

const MAX_DELAY_MS = 600_000;

export class FaultTable {
  #next = 1;
  readonly #faults: Fault[] = [];

  /** Add a fault; EINVAL for an unknown op or errno, a bad count or delay, or neither errno nor delay. */
  add(spec: FaultSpec): Fault {
    const bad = (why: string): never => {
      throw new MdevError('EINVAL', why);
    };
    if (!FAULT_OPS.includes(spec.op)) bad(`unknown operation ${String(spec.op)} (one of ${FAULT_OPS.join(', ')})`);
    if (spec.errno === undefined && spec.delayMs === undefined) bad('a fault needs an errno or a delay');
    if (spec.errno !== undefined && !isErrnoName(spec.errno)) bad(`unknown errno ${String(spec.errno)}`);
    const delay = spec.delayMs;
    if (delay !== undefined && !(Number.isSafeInteger(delay) && delay >= 0 && delay <= MAX_DELAY_MS)) {
      bad(`delay must be an integer from 0 to ${MAX_DELAY_MS} ms`);
    }
    const count = spec.count ?? 1;
    if (!(Number.isSafeInteger(count) && count >= 1)) bad('count must be a positive integer');
    for (const k of ['parent', 'type', 'uuid'] as const) {
      if (spec[k] !== undefined && (typeof spec[k] !== 'string' || spec[k] === '')) bad(`${k} must be a non-empty string`);
    }
    const fault: Fault = { ...spec, uuid: spec.uuid?.toLowerCase(), id: this.#next++, remaining: count };
    for (const k of ['parent', 'type', 'uuid', 'errno', 'delayMs'] as const) if (fault[k] === undefined) delete fault[k];
    delete fault.count;
    this.#faults.push(fault);
    return fault;
  }

  /** Pending faults, oldest first (copies). */
  list(): Fault[] {
    return this.#faults.map(f => ({ ...f }));
  }

  /** Drop one fault by id (ENOENT if there is none), or all of them. */
  clear(id?: number): void {
    if (id === undefined) {
      this.#faults.length = 0;
      return;
    }
    const i = this.#faults.findIndex(f => f.id === id);
    if (i < 0) throw new MdevError('ENOENT', `no pending fault ${id}`);
    this.#faults.splice(i, 1);
  }

  /**
   * A call is about to go to the vendor: the first matching fault is used up.
   * undefined when none matches (no await needed), else a promise that waits
   * out its delay and then rejects with its errno, or resolves.
   */
  hit(op: FaultOp, target: FaultTarget): Promise<void> | undefined {
    if (this.#faults.length === 0) return undefined;
    const i = this.#faults.findIndex(f => f.op === op && matches(f, target));
    if (i < 0) return undefined;
    const f = this.#faults[i]!;
    if (--f.remaining <= 0) this.#faults.splice(i, 1);
    const what = `${op}${target.uuid ? ` ${target.uuid}` : target.parent ? ` on ${target.parent}` : ''}`;
    const fail = (): void => {
      if (f.errno !== undefined) throw new MdevError(f.errno, `${what}: injected fault ${f.id}: ${f.errno}`);
    };
    if (!f.delayMs) return Promise.resolve().then(fail);
    return new Promise<void>(resolve => setTimeout(resolve, f.delayMs)).then(fail);
  }
}

function matches(f: Fault, t: FaultTarget): boolean {
  return (
    (f.parent === undefined || f.parent === t.parent) &&
    (f.type === undefined || f.type === t.type) &&
    (f.uuid === undefined || f.uuid === t.uuid?.toLowerCase())
  );
}
