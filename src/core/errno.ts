import { KERNEL_ERRNO, LINUX_ERRNO, LINUX_ERRNO_ALIASES } from './errno-names.js';

/**
 * An errno name a plugin may throw: every Linux one (EPERM ... EHWPOISON, with
 * the aliases EWOULDBLOCK, EDEADLOCK and ENOTSUP), so every name of Node's
 * os.constants.errno, and three of the kernel's own (ENOIOCTLCMD,
 * EPROBE_DEFER, ENOTSUPP), which reach user space as ENOTTY, EAGAIN and
 * EOPNOTSUPP (errno-names.ts KERNEL_ERRNO says why).
 */
export type ErrnoName = keyof typeof LINUX_ERRNO | keyof typeof LINUX_ERRNO_ALIASES | keyof typeof KERNEL_ERRNO;

const numbers = new Map<string, number>([
  ...Object.entries(LINUX_ERRNO),
  ...Object.entries(LINUX_ERRNO_ALIASES),
  ...Object.entries(KERNEL_ERRNO).map(([k, v]) => [k, v.number] as const),
]);
// The first name of a number wins: the table lists the canonical one first (EAGAIN, not EWOULDBLOCK).
const byNumber = new Map<number, ErrnoName>();
for (const [name, n] of numbers) if (!byNumber.has(n)) byNumber.set(n, name as ErrnoName);

/** The kernel's positive errno number for a name (EUSERS → 87, ENOTSUPP → 524). */
export function errnoNumber(name: ErrnoName): number {
  return numbers.get(name)!;
}

/** The errno number a caller in user space gets for a name: errnoNumber, but the kernel's own map to theirs (ENOTSUPP → 95). */
export function userErrno(name: ErrnoName): number {
  const k = (KERNEL_ERRNO as Record<string, { user: ErrnoName }>)[name];
  return errnoNumber(k ? k.user : name);
}

/** The name for a positive or negative errno number (-28 → ENOSPC), if it is one of ErrnoName's. */
export function errnoName(n: number): ErrnoName | undefined {
  return Number.isInteger(n) ? byNumber.get(Math.abs(n)) : undefined;
}

export function isErrnoName(s: unknown): s is ErrnoName {
  return typeof s === 'string' && numbers.has(s);
}

/**
 * Every failure in mdevfs is an MdevError carrying an errno name. The FUSE
 * layer hands `-userErrno(errno)` to the kernel, so a writer sees exactly it.
 *
 * Plugins may throw an MdevError (made from a name, or a number such as 75),
 * an errno name, or any object with an `errno` property (a name such as
 * 'ENOSPC' or a number such as 28, or -28 kernel-style); anything else, and a
 * name or number that is no errno, becomes EIO with a message that says so.
 */
export class MdevError extends Error {
  readonly errno: ErrnoName;
  constructor(errno: ErrnoName | number, message?: string) {
    const name = typeof errno === 'number' ? errnoName(errno) : isErrnoName(errno) ? errno : undefined;
    // A plugin in plain JavaScript can pass anything: fail with EIO, and say what it passed.
    super(name ? (message ?? name) : withDetail(`not an errno: ${describe(errno)}`, message));
    this.name = 'MdevError';
    this.errno = name ?? 'EIO';
  }
  /** The kernel's positive errno number (EUSERS → 87). */
  get code(): number {
    return errnoNumber(this.errno);
  }
}

/** Normalise anything thrown (by a plugin or by Node) into an MdevError; `fallback` for what carries no errno. */
export function toMdevError(e: unknown, fallback: ErrnoName = 'EIO'): MdevError {
  if (e instanceof MdevError) return e;
  if (isErrnoName(e)) return new MdevError(e);
  if (e && typeof e === 'object') {
    const o = e as { errno?: unknown; code?: unknown; message?: unknown };
    const msg = typeof o.message === 'string' && o.message ? o.message : undefined;
    const byErrno = typeof o.errno === 'number' ? errnoName(o.errno) : isErrnoName(o.errno) ? o.errno : undefined;
    if (byErrno) return new MdevError(byErrno, msg);
    // Node's system errors carry the name in `code` (and a negative number in `errno`).
    if (isErrnoName(o.code)) return new MdevError(o.code, msg);
    if (o.errno !== undefined) return new MdevError(fallback, withDetail(`not an errno: ${describe(o.errno)}`, msg));
  }
  return new MdevError(fallback, errorMessage(e));
}

/** The message of anything thrown: an Error's message, a string, an object's `message`, or the value described. */
export function errorMessage(e: unknown): string {
  if (e instanceof Error) return e.message || e.name;
  if (typeof e === 'string') return e;
  const m = e && typeof e === 'object' ? (e as { message?: unknown }).message : undefined;
  return typeof m === 'string' && m ? m : describe(e);
}

/** A value as short text for a message (JSON where it can be): never "[object Object]". */
function describe(v: unknown): string {
  if (typeof v === 'function') return `a function ${v.name || '(anonymous)'}`;
  if (typeof v !== 'object' || v === null) return typeof v === 'string' ? JSON.stringify(v) : String(v);
  const ctor: unknown = (v as { constructor?: { name?: unknown } }).constructor?.name;
  const kind = typeof ctor === 'string' && ctor !== 'Object' ? ctor : undefined;
  let json: string | undefined;
  try {
    json = JSON.stringify(v);
  } catch {
    /* a cycle or a BigInt */
  }
  if (json === undefined) return kind ? `a ${kind} object` : 'an object';
  if (json.length > 200) json = `${json.slice(0, 199)}…`;
  return kind ? `${kind} ${json}` : json;
}

function withDetail(what: string, message: string | undefined): string {
  return message ? `${what}: ${message}` : what;
}

/** The first non-blank line of a (possibly multi-line) message, trimmed, for one-line reports. */
export function firstLine(text: string): string {
  for (const line of text.split('\n')) {
    const t = line.trim();
    if (t) return t;
  }
  return '';
}
