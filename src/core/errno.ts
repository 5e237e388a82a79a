/** Linux (x86, arm, s390) errno numbers. Node's os.constants.errno lacks some (EUSERS). */
const LINUX_ERRNO = {
  EPERM: 1,
  ENOENT: 2,
  EINTR: 4,
  EIO: 5,
  ENXIO: 6,
  E2BIG: 7,
  EBADF: 9,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EFAULT: 14,
  EBUSY: 16,
  EEXIST: 17,
  ENODEV: 19,
  ENOTDIR: 20,
  EISDIR: 21,
  EINVAL: 22,
  ENOTTY: 25,
  EFBIG: 27,
  ENODATA: 61,
  ENOSPC: 28,
  EROFS: 30,
  ERANGE: 34,
  EDEADLK: 35,
  ENOSYS: 38,
  ENOTEMPTY: 39,
  EUSERS: 87,
  EOPNOTSUPP: 95,
  EADDRINUSE: 98,
  EADDRNOTAVAIL: 99,
  ENOTCONN: 107,
  ETIMEDOUT: 110,
  ECANCELED: 125,
} as const;

/** Linux errno names that the mdev framework, sysfs and VFIO report. */
export type ErrnoName = keyof typeof LINUX_ERRNO;

/** The positive Linux errno number for a name (EUSERS → 87). */
export function errnoNumber(name: ErrnoName): number {
  return LINUX_ERRNO[name];
}

const byNumber = new Map<number, ErrnoName>(Object.entries(LINUX_ERRNO).map(([k, v]) => [v, k as ErrnoName]));

/** The name for a positive or negative errno number, if mdevfs knows it. */
export function errnoName(n: number): ErrnoName | undefined {
  return byNumber.get(Math.abs(n));
}

export function isErrnoName(s: unknown): s is ErrnoName {
  return typeof s === 'string' && Object.prototype.hasOwnProperty.call(LINUX_ERRNO, s);
}

/**
 * Every failure in mdevfs is an MdevError carrying a Linux errno name. The FUSE
 * layer hands `-errnoNumber(errno)` to the kernel, so a writer sees exactly it.
 *
 * Plugins may throw an MdevError, or any object with an `errno` property (a name
 * such as 'ENOSPC' or a number such as 28); anything else becomes EIO.
 */
export class MdevError extends Error {
  readonly errno: ErrnoName;
  constructor(errno: ErrnoName, message?: string) {
    super(message ?? errno);
    this.name = 'MdevError';
    this.errno = errno;
  }
  /** The positive errno number (EUSERS → 87). */
  get code(): number {
    return errnoNumber(this.errno);
  }
}

/** Normalise anything thrown (by a plugin or by Node) into an MdevError. */
export function toMdevError(e: unknown, fallback: ErrnoName = 'EIO'): MdevError {
  if (e instanceof MdevError) return e;
  if (e && typeof e === 'object') {
    const o = e as { errno?: unknown; code?: unknown; message?: unknown };
    const msg = typeof o.message === 'string' ? o.message : undefined;
    if (isErrnoName(o.errno)) return new MdevError(o.errno, msg);
    if (typeof o.errno === 'number') {
      const name = errnoName(o.errno);
      if (name) return new MdevError(name, msg);
    }
    if (isErrnoName(o.code)) return new MdevError(o.code, msg);
  }
  if (isErrnoName(e)) return new MdevError(e);
  return new MdevError(fallback, errorMessage(e));
}

/** The message of anything thrown: an Error's message, or the value as text. */
export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** The first non-blank line of a (possibly multi-line) message, trimmed, for one-line reports. */
export function firstLine(text: string): string {
  for (const line of text.split('\n')) {
    const t = line.trim();
    if (t) return t;
  }
  return '';
}
