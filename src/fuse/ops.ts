/**
 * The fuse-native engine's operations table: libfuse 2's path-based
 * high-level API over TreeFs (tree-fs.ts), which holds every sysfs rule.
 * Handlers resolve the path to an entry, call TreeFs, and return a code (or
 * a [code, value] pair), synchronously or as a promise, or throw an errno;
 * `wrap` turns that into exactly one fuse-native callback with an integer
 * first argument in -511..count (docs/fuse.md#callback-discipline).
 */
import { posix } from 'node:path';
import type Fuse from 'fuse-native';
import { errnoName } from '../core/errno.js';
import { toNegErrno } from './errno.js';
import type { KDir } from '../kernfs/index.js';
import type { OverlayView } from '../overlay/index.js';
import { STATFS, TreeFs, fail, mknodErrno } from './tree-fs.js';

export { statOf } from './tree-fs.js';
export { toNegErrno };

/** A code, or a code and the values that follow it in the callback. */
type Result = number | [number, ...unknown[]];
type Handler = (...args: never[]) => Result | Promise<Result>;

export interface OpsOptions {
  /** Called for failed requests and stores when set (the CLI's --verbose). */
  trace?: (message: string) => void;
  /** Serve the tree merged over this view's base (an overlay); by default the bare tree. */
  view?: OverlayView;
}

const EIO = -5;

/**
 * One wrapper for every handler: exactly one callback; first argument an
 * integer; a negative one is a valid errno (else EIO); a throw (sync or async)
 * becomes its errno; a callback that throws is contained.
 */
export function wrap(name: string, fn: Handler, trace?: (m: string) => void): (...args: unknown[]) => void {
  return (...args: unknown[]) => {
    const cb = args.pop() as (code: number, ...values: unknown[]) => void;
    let done = false;
    const reply = (code: number, values: unknown[] = []): void => {
      if (done) return;
      done = true;
      if (!Number.isInteger(code) || code < -511 || code > 0x7fffffff) {
        code = EIO;
        values = [];
      }
      if (code < 0) values = [];
      // Failed look-ups are the normal traffic of shells and tools: not traced.
      if (trace && code < 0 && !(code === -2 && (name === 'getattr' || name === 'access'))) {
        trace(`${name} ${String(args[0])} → ${errnoName(code) ?? code}`);
      }
      try {
        cb(code, ...values);
      } catch (e) {
        trace?.(`${name}: callback threw: ${e instanceof Error ? e.message : String(e)}`);
      }
    };
    const settle = (r: Result): void => {
      if (Array.isArray(r)) reply(r[0], r.slice(1));
      else reply(r);
    };
    let r: Result | Promise<Result>;
    try {
      r = (fn as (...a: unknown[]) => Result | Promise<Result>)(...args);
    } catch (e) {
      reply(toNegErrno(e));
      return;
    }
    if (r && typeof (r as Promise<Result>).then === 'function') {
      (r as Promise<Result>).then(settle, e => reply(toNegErrno(e)));
    } else {
      settle(r as Result);
    }
  };
}

const UNCHANGED_ID = 0xffffffff;

/** The ops table for fuse-native over `root`. */
export function createOperations(root: KDir, opts: OpsOptions = {}): Fuse.Operations {
  const fs = new TreeFs(root, opts);
  const at = (p: string) => fs.resolve(p);
  /** The directory a new name would go in (undefined if it does not exist). */
  const dirOf = (p: string) => fs.view.resolve(posix.dirname(p));

  const table: Record<string, Handler> = {
    getattr: (path: string): Result => [0, fs.stat(at(path))],
    access: (path: string, mode: number): Result => (fs.access(at(path), mode), 0),
    statfs: (): Result => [0, { ...STATFS }],

    readdir: (path: string): Result => {
      const d = at(path);
      const up = path === '/' ? d : (fs.view.resolve(posix.dirname(path)) ?? d);
      const list = fs.list(d, up);
      return [0, list.map(e => e.name), list.map(e => ({ mode: e.mode, ino: e.ino }))];
    },
    opendir: (path: string, flags: number): Result => (fs.opendir(at(path), flags), [0, 0]),
    releasedir: (): Result => 0,

    open: (path: string, flags: number): Result | Promise<Result> => {
      const fh = fs.open(at(path), flags);
      return typeof fh === 'number' ? [0, fh] : fh.then(h => [0, h]);
    },
    read: async (_path: string, fd: number, buf: Buffer, len: number, pos: number): Promise<Result> => {
      const data = await fs.read(fd, pos, Math.min(len, buf.length));
      data.copy(buf, 0, 0, data.length);
      return data.length;
    },
    // Copy now: fuse-native detaches buf once we answer.
    write: (_path: string, fd: number, buf: Buffer, len: number, pos: number): Promise<Result> =>
      fs.write(fd, Buffer.from(buf.subarray(0, len)), pos),
    flush: (): Result => 0,
    release: (_path: string, fd: number): Result | Promise<Result> => {
      const r = fs.release(fd);
      return r ? r.then(() => 0) : 0;
    },
    fsync: (): Result => 0,
    // kernfs's directory file_operations have no fsync: EINVAL (vfs_fsync_range).
    fsyncdir: (): Result => fail('EINVAL'),
    // No xattr ops on purpose: answered, every `ls -l` entry and every write
    // (the kernel asks for security.capability) would cost a FUSE round trip;
    // unanswered, the kernel stops asking and says EOPNOTSUPP (docs/abi.md#where-mdevfs-differs).

    // O_TRUNC and truncate(2) are accepted and ignored, as sysfs does.
    truncate: (path: string): Result => (fs.setattr(at(path), { size: 0 }), 0),
    ftruncate: (): Result => 0,
    readlink: (path: string): Result => [0, fs.readlink(at(path))],
    chmod: (path: string, mode: number): Result => (fs.setattr(at(path), { mode }), 0),
    chown: (path: string, uid: number, gid: number): Result => {
      const id = (v: number) => (v !== UNCHANGED_ID && v >= 0 ? v : undefined);
      fs.setattr(at(path), { uid: id(uid), gid: id(gid) });
      return 0;
    },
    utimens: (path: string, atime: number, mtime: number): Result => (fs.setattr(at(path), { atime, mtime }), 0),

    // The namespace belongs to the kernel: nothing can be created, renamed or
    // deleted (and in or under a base directory, nothing changes: EROFS).
    create: (path: string): Result => fs.refuseNew(dirOf(path), 'EACCES'),
    mknod: (path: string, mode: number): Result => fs.refuseNew(dirOf(path), mknodErrno(mode)),
    mkdir: (path: string): Result => fs.refuseNew(dirOf(path), 'EPERM'),
    rmdir: (path: string): Result => fs.refuseChange(at(path)),
    unlink: (path: string): Result => fs.refuseChange(at(path)),
    rename: (src: string, dest: string): Result => (fs.own(at(src)), fs.refuseNew(dirOf(dest), 'EPERM')),
    link: (_src: string, dest: string): Result => fs.refuseNew(dirOf(dest), 'EPERM'),
    // symlink(target, linkpath): only the new link's place matters.
    symlink: (_target: string, dest: string): Result => fs.refuseNew(dirOf(dest), 'EPERM'),
  };

  const ops: Record<string, unknown> = {};
  for (const [name, fn] of Object.entries(table)) ops[name] = wrap(name, fn, opts.trace);
  return ops as Fuse.Operations;
}
