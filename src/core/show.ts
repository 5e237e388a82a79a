import { MdevError } from './errno.js';

/**
 * The one rule for what a show may return, on every path (attribute files,
 * descriptions, a parent's uevent variables): text, or binary data as a
 * Buffer or Uint8Array. Anything else fails the read with EIO, as a sysfs
 * show that returned garbage would.
 */
export function asShowResult(value: unknown, what: string): string | Uint8Array {
  if (typeof value === 'string' || value instanceof Uint8Array) return value;
  throw new MdevError('EIO', `${what}: show returned ${value === null ? 'null' : typeof value}, not text or bytes`);
}
