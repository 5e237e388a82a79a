/** The errno a FUSE reply carries, for both engines. */
import { toMdevError, userErrno } from '../core/errno.js';

const EIO = -5;

/** Any thrown value → a negative errno in -1..-511 (the kernel's own codes mapped as user space gets them; from -512 on the kernel rejects the reply). */
export function toNegErrno(e: unknown): number {
  const n = userErrno(toMdevError(e).errno);
  return n >= 1 && n <= 511 ? -n : EIO;
}
