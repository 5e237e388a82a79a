/**
 * The FUSE operations table over a kernfs tree (model: libfuse's example/
 * programs, one small function per op). Handlers return a code (or a
 * [code, value] pair), synchronously or as a promise, or throw an errno;
 * `wrap` turns that into exactly one fuse-native callback with an integer
 * first argument in -511..count.
 *
 * sysfs behaviour copied here (docs/abi.md#file-behaviour; fs/kernfs/file.c
 * kernfs_fop_open, fs/sysfs/file.c):
 * - st_size 4096 for attributes, a binary attribute's own size (KBinAttr),
 *   0 for directories and links; dirs nlink 2 + subdirs; uid/gid 0; st_ino
 *   is the node's (stable while the node lives).
 * - open: EACCES when opening for reading a node without a read bit, or for
 *   writing a node without a write bit, even for root; O_TRUNC accepted.
 * - access(): root semantics (only the mounting user, root, can reach the
 *   mount unless allow_other, which then adds default_permissions so the
 *   kernel checks mode bits itself and never asks).
 * - read: generated at offset 0 into a per-descriptor snapshot (seq_file);
 *   a binary attribute is read at each position, cut at its size (bin.ts).
 * - write: each write(2) is one store; the offset is ignored (a binary
 *   attribute's write gets it, and EFBIG at or past its size); its errno goes
 *   back to the writer; more than 4096 bytes are cut to 4096 (the count
 *   returned says so, as the kernel's does).
 * - a descriptor whose node was removed gets ENODEV on read and write.
 * - mkdir/rmdir/rename/unlink/symlink/link → EPERM; create and mknod of a
 *   regular file → EACCES; mknod of a FIFO, socket or device → EPERM.
 * - device files (KDevFile, e.g. the VFIO device files) are the exception:
 *   st_size 0; open calls the node's open (its errno goes to open(2)) and
 *   keeps the handle per descriptor; read/write pass the position through
 *   unchanged (fuse-native delivers it exactly up to 2^53); release closes
 *   the handle. No snapshot, no PAGE_SIZE cut, nothing ignored.
 * - chmod/chown/utimens change the node's attributes, as sysfs allows root to
 *   (kernfs_iop_setattr); a re-created node starts again from its defaults.
 *
 * Over an overlay's base (src/overlay, docs/overlay.md) a name the tree lacks
 * is looked up in the base; such an entry is served by base-files.ts and is
 * read-only: opening it for writing, or changing anything in or under it, is EROFS.
 */
import { constants as fsConstants } from 'node:fs';
import { posix } from 'node:path';
import type Fuse from 'fuse-native';
import { errnoName, toMdevError, userErrno, MdevError, type ErrnoName } from '../core/errno.js';
import {
  KAttr,
  KBinAttr,
  KDevFile,
  KDir,
  KLink,
  type KNode,
  openAttr,
  openBin,
  openDev,
  type OpenAttr,
  OpenBin,
  OpenDev,
  PAGE_SIZE,
} from '../kernfs/index.js';
import { BaseEntry, OverlayView, type Entry } from '../overlay/index.js';
import { OpenBase, baseStatOf } from './base-files.js';

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
/** open(2)'s O_DIRECT, whose value differs by architecture. */
const O_DIRECT = fsConstants.O_DIRECT;

/** Any thrown value → a negative errno in -1..-511 (the kernel's own codes mapped as user space gets them). */
export function toNegErrno(e: unknown): number {
  const n = userErrno(toMdevError(e).errno);
  return n >= 1 && n <= 511 ? -n : EIO;
}

function fail(name: ErrnoName): never {
  throw new MdevError(name);
}

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

/** The stat of a node (fuse-native's getStatArray input). */
export function statOf(n: KNode): Fuse.Stat {
  let size = 0;
  let nlink = 1;
  if (n instanceof KAttr) size = PAGE_SIZE;
  else if (n instanceof KBinAttr) size = n.size;
  else if (n instanceof KDir) nlink = n.subdirs + 2;
  return {
    mode: n.typeBits | n.mode,
    uid: n.uid,
    gid: n.gid,
    size,
    nlink,
    ino: n.ino,
    blksize: PAGE_SIZE,
    blocks: 0,
    atime: n.atime,
    mtime: n.mtime,
    ctime: n.ctime,
  };
}

/** readdir's view of an entry: its type bits and inode number. */
function entryDirent(e: Entry): Fuse.Stat {
  return e instanceof BaseEntry ? { mode: e.stat.mode, ino: e.ino } : { mode: e.typeBits | e.mode, ino: e.ino };
}

const X_OK = 1;
const W_OK = 2;
const O_ACCMODE = 3;
const UNCHANGED_ID = 0xffffffff;

/** The ops table for fuse-native over `root`. */
export function createOperations(root: KDir, opts: OpsOptions = {}): Fuse.Operations {
  type Handle = OpenAttr | OpenBin | OpenDev | OpenBase;
  const handles = new Map<number, Handle>();
  let nextFd = 1;
  const allocFd = (h: Handle): number => {
    // fd 0 would leave fh unset; fds are uint32.
    for (;;) {
      const fd = nextFd;
      nextFd = nextFd >= 0xfffffffe ? 1 : nextFd + 1;
      if (!handles.has(fd)) {
        handles.set(fd, h);
        return fd;
      }
    }
  };
  const view = opts.view ?? new OverlayView(root);
  const lookup = (p: string): Entry => view.resolve(p) ?? fail('ENOENT');
  /** A node of the tree to change; the base's entries are read-only. */
  const own = (p: string): KNode => {
    const n = lookup(p);
    return n instanceof BaseEntry ? fail('EROFS') : n;
  };
  /** A new name in a base directory would be a change to the base. */
  const refuseInBase = (p: string): void => {
    if (view.base && view.resolve(posix.dirname(p)) instanceof BaseEntry) fail('EROFS');
  };
  const handle = (fd: number): Handle => handles.get(fd) ?? fail('EBADF');
  const trace = opts.trace;

  const table: Record<string, Handler> = {
    getattr: (path: string): Result => {
      const n = lookup(path);
      if (n instanceof BaseEntry) return [0, baseStatOf(n)];
      const st = statOf(n);
      // A directory the base may add to has uncounted subdirectories: st_nlink 1, "unknown", as
      // btrfs says. Decided without asking the base, so an emulated path costs it no syscall.
      if (n instanceof KDir && view.mayMerge(n)) st.nlink = 1;
      return [0, st];
    },

    access: (path: string, mode: number): Result => {
      const n = lookup(path);
      if (n instanceof BaseEntry) {
        if (mode & W_OK) fail('EROFS');
        if (mode & X_OK && !n.isDir && !(n.stat.mode & 0o111)) fail('EACCES');
        return 0;
      }
      // Root: read and write always; execute needs some x bit on non-directories.
      if (mode & X_OK && !(n instanceof KDir) && !(n.mode & 0o111)) fail('EACCES');
      return 0;
    },

    statfs: (): Result => [
      0,
      {
        bsize: PAGE_SIZE,
        frsize: PAGE_SIZE,
        blocks: 0,
        bfree: 0,
        bavail: 0,
        files: 0,
        ffree: 0,
        favail: 0,
        fsid: 0,
        flag: 0,
        namemax: 255,
      },
    ],

    readdir: (path: string): Result => {
      const d = lookup(path);
      if (!(d instanceof KDir || (d instanceof BaseEntry && d.isDir))) fail('ENOTDIR');
      const up = path === '/' ? d : (view.resolve(posix.dirname(path)) ?? d);
      const names = ['.', '..'];
      const stats: Fuse.Stat[] = [entryDirent(d), entryDirent(up)];
      // The tree's names in kernfs order (hash, then name), as a real sysfs lists; then the base's.
      for (const c of view.list(d, path)) {
        names.push(c.name);
        stats.push({ mode: c.mode, ino: c.ino });
      }
      return [0, names, stats];
    },

    opendir: (path: string, flags: number): Result => {
      const d = lookup(path);
      if (!(d instanceof KDir || (d instanceof BaseEntry && d.isDir))) fail('ENOTDIR');
      if (flags & O_DIRECT) fail('EINVAL');
      return [0, 0];
    },
    releasedir: (): Result => 0,

    open: (path: string, flags: number): Result | Promise<Result> => {
      const n = lookup(path);
      if (n instanceof BaseEntry) {
        if ((flags & O_ACCMODE) !== 0 || flags & fsConstants.O_TRUNC) fail('EROFS');
        return [0, allocFd(new OpenBase(view.base!, n))];
      }
      // do_dentry_open(): no kernfs file can do direct I/O (FMODE_CAN_ODIRECT).
      if (flags & O_DIRECT) fail('EINVAL');
      if (n instanceof KDevFile) return openDev(n, flags).then(h => [0, allocFd(h)]);
      if (n instanceof KBinAttr) return [0, allocFd(openBin(n, flags))];
      return [0, allocFd(openAttr(n, flags))];
    },

    read: async (_path: string, fd: number, buf: Buffer, len: number, pos: number): Promise<Result> => {
      const h = handle(fd);
      if (h instanceof OpenBase) return h.read(buf, len, pos);
      const data = await h.read(pos, len);
      const n = Math.min(data.length, len, buf.length);
      data.copy(buf, 0, 0, n);
      return n;
    },

    write: (path: string, fd: number, buf: Buffer, len: number, pos: number): Promise<Result> => {
      // Copy now: fuse-native detaches buf once we answer.
      const data = Buffer.from(buf.subarray(0, len));
      const h = handle(fd);
      if (h instanceof OpenBase) fail('EBADF');
      if (h instanceof OpenDev || h instanceof OpenBin) return h.write(data, pos);
      trace?.(`store ${path} ${JSON.stringify(data.toString('latin1'))}`);
      return h.write(data);
    },

    flush: (): Result => 0,
    release: (_path: string, fd: number): Result | Promise<Result> => {
      const h = handles.get(fd);
      handles.delete(fd);
      // A device's close runs before the answer, so whoever waits for it
      // (a blocked `remove`) is released by the time RELEASE completes.
      if (h instanceof OpenDev) return h.release().then(() => 0);
      if (h instanceof OpenBase) h.release();
      return 0;
    },
    fsync: (): Result => 0,
    // kernfs's directory file_operations have no fsync: EINVAL (vfs_fsync_range).
    fsyncdir: (): Result => fail('EINVAL'),
    // No xattr ops on purpose: answered, every `ls -l` entry and every write
    // (the kernel asks for security.capability) would cost a FUSE round trip;
    // unanswered, the kernel stops asking and says EOPNOTSUPP (docs/abi.md#where-mdevfs-differs).

    // O_TRUNC and truncate(2) are accepted and ignored, as sysfs does.
    truncate: (path: string): Result => {
      own(path);
      return 0;
    },
    ftruncate: (): Result => 0,

    readlink: (path: string): Result => {
      const n = lookup(path);
      if (n instanceof BaseEntry) return n.stat.isSymbolicLink() ? [0, view.base!.readlink(n.path)] : fail('EINVAL');
      if (!(n instanceof KLink)) fail('EINVAL');
      return [0, n.targetText()];
    },

    chmod: (path: string, mode: number): Result => {
      const n = own(path);
      n.mode = mode & 0o7777;
      n.ctime = Date.now();
      return 0;
    },
    chown: (path: string, uid: number, gid: number): Result => {
      const n = own(path);
      if (uid !== UNCHANGED_ID && uid >= 0) n.uid = uid;
      if (gid !== UNCHANGED_ID && gid >= 0) n.gid = gid;
      n.ctime = Date.now();
      return 0;
    },
    utimens: (path: string, atime: number, mtime: number): Result => {
      const n = own(path);
      if (Number.isFinite(atime)) n.atime = atime;
      if (Number.isFinite(mtime)) n.mtime = mtime;
      n.ctime = Date.now();
      return 0;
    },

    // The namespace belongs to the kernel: nothing can be created, renamed or
    // deleted (and in or under a base directory, nothing changes: EROFS).
    create: (path: string): Result => (refuseInBase(path), fail('EACCES')),
    // mknod(2) of a regular file goes through vfs_create (no ->create: EACCES);
    // a FIFO, socket or device node through vfs_mknod (no ->mknod: EPERM).
    mknod: (path: string, mode: number): Result => {
      refuseInBase(path);
      return fail((mode & 0o170000) === 0o100000 || (mode & 0o170000) === 0 ? 'EACCES' : 'EPERM');
    },
    mkdir: (path: string): Result => (refuseInBase(path), fail('EPERM')),
    rmdir: (path: string): Result => (own(path), fail('EPERM')),
    unlink: (path: string): Result => (own(path), fail('EPERM')),
    rename: (src: string, dest: string): Result => (own(src), refuseInBase(dest), fail('EPERM')),
    link: (_src: string, dest: string): Result => (refuseInBase(dest), fail('EPERM')),
    // symlink(target, linkpath): only the new link's place matters.
    symlink: (_target: string, dest: string): Result => (refuseInBase(dest), fail('EPERM')),
  };

  const ops: Record<string, unknown> = {};
  for (const [name, fn] of Object.entries(table)) ops[name] = wrap(name, fn, trace);
  return ops as Fuse.Operations;
}
