/**
 * Bounded calls into plugin code. Whatever a callback does — return, throw,
 * reject, or never settle — the caller gets a value or an MdevError within
 * `timeoutMs`, so a broken plugin cannot wedge the core or the FUSE thread.
 * The bound needs the event loop: a callback that never returns (a
 * synchronous loop) blocks the whole daemon (README, "Fidelity notes and limits").
 */
import type { Attribute, Awaitable, MdevType } from './api.js';
import { MdevError, toMdevError, type ErrnoName } from './errno.js';
import { asShowResult } from './show.js';

export const DEFAULT_CALL_TIMEOUT_MS = 5000;

export interface PluginCallOptions<T> {
  /** Names the callback in errors and logs, e.g. "mtty: create(<uuid>)". */
  what: string;
  timeoutMs: number;
  /** errno for throws that carry none. Default EIO. */
  fallback?: ErrnoName;
  /** The callback succeeded after it had already timed out: undo its effect. */
  onLate?: (value: T) => void;
  /** Runs the callback inside a context (the core uses it to detect re-entry under its lock). */
  run?: <R>(fn: () => R) => R;
}

function wrapError(e: unknown, what: string, fallback: ErrnoName): MdevError {
  const err = toMdevError(e, fallback);
  return new MdevError(err.errno, err.message === err.errno ? `${what}: ${err.errno}` : `${what}: ${err.message}`);
}

function isThenable<T>(v: unknown): v is PromiseLike<T> {
  return v !== null && (typeof v === 'object' || typeof v === 'function') && typeof (v as { then?: unknown }).then === 'function';
}

/** Call `fn`; normalise its failure to an MdevError; bound it with ETIMEDOUT. */
export function callPlugin<T>(fn: () => Awaitable<T>, opts: PluginCallOptions<T>): Promise<T> {
  const fallback = opts.fallback ?? 'EIO';
  let result: Awaitable<T>;
  try {
    result = opts.run ? opts.run(fn) : fn();
  } catch (e) {
    return Promise.reject(wrapError(e, opts.what, fallback));
  }
  // Synchronous callbacks need no timer (the common case, and the cheap one).
  if (!isThenable<T>(result)) return Promise.resolve(result);
  const pending = result;
  return new Promise<T>((resolve, reject) => {
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      reject(new MdevError('ETIMEDOUT', `${opts.what}: did not settle within ${opts.timeoutMs} ms`));
    }, opts.timeoutMs);
    pending.then(
      value => {
        if (!timedOut) {
          clearTimeout(timer);
          resolve(value);
        } else if (opts.onLate) {
          try {
            opts.onLate(value);
          } catch {
            /* best effort */
          }
        }
      },
      (e: unknown) => {
        if (!timedOut) {
          clearTimeout(timer);
          reject(wrapError(e, opts.what, fallback));
        }
      },
    );
  });
}

/**
 * A show of a plugin attribute: bounded, errno-normalised, checked by
 * asShowResult. No `show` → EIO (mdev_type_attr_show / dev_attr_show default).
 */
export async function showAttribute<C>(
  attr: Attribute<C>,
  ctx: C,
  timeoutMs = DEFAULT_CALL_TIMEOUT_MS,
  what = attr.name,
): Promise<string | Uint8Array> {
  const show = attr.show;
  if (!show) throw new MdevError('EIO', `${what}: attribute has no show`);
  return asShowResult(await callPlugin(() => show.call(attr, ctx), { what: `${what}: show`, timeoutMs }), what);
}

/**
 * A store of a plugin attribute: the written bytes (or text, taken as UTF-8)
 * go to `store` both decoded as UTF-8 and raw (Attribute.store). No `store` → EIO.
 */
export async function storeAttribute<C>(
  attr: Attribute<C>,
  ctx: C,
  written: Uint8Array | string,
  timeoutMs = DEFAULT_CALL_TIMEOUT_MS,
  what = attr.name,
): Promise<void> {
  const store = attr.store;
  if (!store) throw new MdevError('EIO', `${what}: attribute has no store`);
  const raw =
    typeof written === 'string' ? Buffer.from(written, 'utf8') : Buffer.from(written.buffer, written.byteOffset, written.byteLength);
  await callPlugin(() => store.call(attr, ctx, raw.toString('utf8'), raw), { what: `${what}: store`, timeoutMs });
}

/** The description file's content (undefined: no file), bounded like a show. */
export async function showDescription(type: MdevType, timeoutMs = DEFAULT_CALL_TIMEOUT_MS): Promise<string | Uint8Array | undefined> {
  const d = type.spec.description;
  if (d === undefined || typeof d === 'string') return d;
  const what = `${type.id}: description`;
  return asShowResult(await callPlugin(() => d(type), { what, timeoutMs }), what);
}
