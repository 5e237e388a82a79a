import { MdevError, toMdevError } from '../core/errno.js';

/**
 * Call a plugin function with a bound: its result, its error as an MdevError
 * (anything without an errno becomes EIO), or ETIMEDOUT if it has not settled
 * within `ms`. A synchronous throw is caught too. The late result of a call
 * that timed out is dropped.
 */
export function bounded<T>(fn: () => T | Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const timer = ms > 0 && Number.isFinite(ms)
      ? setTimeout(() => {
        if (settled) return;
        settled = true;
        reject(new MdevError('ETIMEDOUT', `${what} did not answer within ${ms} ms`));
      }, ms)
      : undefined;
    const done = (ok: boolean, v: unknown) => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      if (ok) resolve(v as T);
      else reject(toMdevError(v));
    };
    try {
      const r = fn();
      if (r && typeof (r as { then?: unknown }).then === 'function') {
        (r as Promise<T>).then(v => done(true, v), e => done(false, e));
      } else {
        done(true, r);
      }
    } catch (e) {
      done(false, e);
    }
  });
}
