/**
 * The file system both FUSE engines serve: sysfs's semantics over a kernfs
 * tree (optionally merged over an overlay's base), addressed by entry rather
 * than by path or node id. ops.ts (fuse-native, path based) and kernel/
 * (/dev/fuse, node-id based) only translate requests into these calls and
 * the answers back; every rule of docs/fuse.md#operations lives here.
 *
 * sysfs behaviour copied here (docs/abi.md#file-behaviour; fs/kernfs/file.c
 * kernfs_fop_open, fs/sysfs/file.c):
 * - st_size 4096 for attributes, a binary attribute's own size (KBinAttr),
 *   0 for directories and links; dirs nlink 2 + subdirs; uid/gid 0; st_ino
 *   is the node's (stable while the node lives).
 * - open: EACCES when opening for reading a node without a read bit, or for
 *   writing a node without a write bit, even for root; O_TRUNC accepted;
 *   O_DIRECT is EINVAL (do_dentry_open(): no FMODE_CAN_ODIRECT).
 * - access(): root semantics (only root reaches the mount unless allow_other,
 *   which adds default_permissions: the kernel then checks mode bits itself).
 * - read: generated at offset 0 into a per-descriptor snapshot (seq_file);
 *   a binary attribute is read at each position (bin.ts); a device file at
 *   the caller's position, through its own handle.
 * - write: each write(2) is one store; the offset is ignored (binary
 *   attributes and device files get it); its errno goes back to the writer.
 * - a descriptor whose node was removed gets ENODEV on read and write.
 * - the namespace is the kernel's: mkdir/rmdir/rename/unlink/symlink/link
 *   EPERM; create and mknod of a regular file EACCES; mknod of a FIFO,
 *   socket or device EPERM (vfs_create / vfs_mknod without the inode op).
 * - chmod/chown/utimens change the node, as sysfs lets root (kernfs_iop_setattr).
 *
 * Over an overlay's base (docs/overlay.md) a name the tree lacks is looked up
 * in the base; such an entry is read-only: writing to it, or changing anything
 * in or under it, is EROFS.
 */
import { constants as fsConstants } from 'node:fs';
import { MdevError, type ErrnoName } from '../core/errno.js';
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
import { OpenBase, baseStatOf, type NodeStat } from './base-files.js';

export type { NodeStat };

/** One name of a listing: its type bits (with the mode) and inode number. */
export interface Dirent {
  name: string;
  mode: number;
  ino: number;
}

/** What a setattr changes; an absent field stays. Times in ms since the epoch. */
export interface AttrChange {
  mode?: number;
  uid?: number;
  gid?: number;
  atime?: number;
  mtime?: number;
  /** truncate(2): accepted and ignored, as sysfs does. */
  size?: number;
}

export interface TreeFsOptions {
  /** Called for stores (the CLI's --verbose). */
  trace?: (message: string) => void;
  /** Serve the tree merged over this view's base (an overlay); by default the bare tree. */
  view?: OverlayView;
}

type Handle = OpenAttr | OpenBin | OpenDev | OpenBase;

const X_OK = 1;
const W_OK = 2;
const O_ACCMODE = 3;
/** open(2)'s O_DIRECT, whose value differs by architecture. */
export const O_DIRECT = fsConstants.O_DIRECT;
const S_IFMT = 0o170000;
const S_IFREG = 0o100000;

export function fail(name: ErrnoName): never {
  throw new MdevError(name);
}

/** The stat of a tree node. */
export function statOf(n: KNode): NodeStat {
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
    rdev: 0,
    blksize: PAGE_SIZE,
    blocks: 0,
    atime: n.atime,
    mtime: n.mtime,
    ctime: n.ctime,
  };
}

/** statfs(2)'s answer (fields as fuse-native names them). */
export const STATFS = Object.freeze({
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
});

export function isDirEntry(e: Entry): boolean {
  return e instanceof KDir || (e instanceof BaseEntry && e.isDir);
}

export class TreeFs {
  readonly view: OverlayView;
  readonly #handles = new Map<number, Handle>();
  #nextFh = 1;
  readonly #trace?: (message: string) => void;

  constructor(root: KDir, opts: TreeFsOptions = {}) {
    this.view = opts.view ?? new OverlayView(root);
    this.#trace = opts.trace;
  }

  /** The entry at `path` ('/a/b'); ENOENT if none. */
  resolve(path: string): Entry {
    return this.view.resolve(path) ?? fail('ENOENT');
  }

  /** The entry `name` in the directory entry `dir`, or undefined. */
  child(dir: Entry, name: string): Entry | undefined {
    if (dir instanceof KDir) {
      const c = dir.get(name);
      if (c || !this.view.base) return c;
    } else if (!this.view.base) return undefined;
    const p = pathOf(dir);
    return this.view.resolve(p === '/' ? `/${name}` : `${p}/${name}`);
  }

  stat(e: Entry): NodeStat {
    if (e instanceof BaseEntry) return baseStatOf(e);
    const st = statOf(e);
    // A directory the base may add to has uncounted subdirectories: st_nlink 1, "unknown", as
    // btrfs says. Decided without asking the base, so an emulated path costs it no syscall.
    if (e instanceof KDir && this.view.mayMerge(e)) st.nlink = 1;
    return st;
  }

  access(e: Entry, mode: number): void {
    if (e instanceof BaseEntry) {
      if (mode & W_OK) fail('EROFS');
      if (mode & X_OK && !e.isDir && !(e.stat.mode & 0o111)) fail('EACCES');
      return;
    }
    // Root: read and write always; execute needs some x bit on non-directories.
    if (mode & X_OK && !(e instanceof KDir) && !(e.mode & 0o111)) fail('EACCES');
  }

  opendir(e: Entry, flags: number): void {
    if (!isDirEntry(e)) fail('ENOTDIR');
    if (flags & O_DIRECT) fail('EINVAL');
  }

  /** `.`, `..`, then the tree's names in kernfs order (hash, then name), as a real sysfs lists; then the base's. */
  list(dir: Entry, up: Entry): Dirent[] {
    if (!(dir instanceof KDir || (dir instanceof BaseEntry && dir.isDir))) fail('ENOTDIR');
    const out: Dirent[] = [direntOf('.', dir), direntOf('..', up)];
    for (const c of this.view.list(dir, pathOf(dir))) out.push(c);
    return out;
  }

  /** open(2): a file handle number (never 0). */
  open(e: Entry, flags: number): number | Promise<number> {
    if (e instanceof BaseEntry) {
      if ((flags & O_ACCMODE) !== 0 || flags & fsConstants.O_TRUNC) fail('EROFS');
      return this.#alloc(new OpenBase(this.view.base!, e));
    }
    if (flags & O_DIRECT) fail('EINVAL');
    if (e instanceof KDevFile) return openDev(e, flags).then(h => this.#alloc(h));
    if (e instanceof KBinAttr) return this.#alloc(openBin(e, flags));
    return this.#alloc(openAttr(e, flags));
  }

  /** The node an open handle is on (undefined for a base file or an unknown handle). */
  nodeOf(fh: number): KNode | undefined {
    const h = this.#handles.get(fh);
    return h && !(h instanceof OpenBase) ? h.node : undefined;
  }

  async read(fh: number, pos: number, len: number): Promise<Buffer> {
    const h = this.#handle(fh);
    if (h instanceof OpenBase) {
      const buf = Buffer.allocUnsafe(len);
      return buf.subarray(0, await h.read(buf, len, pos));
    }
    const data = await h.read(pos, len);
    return data.length > len ? data.subarray(0, len) : data;
  }

  /** One write(2). `data` must stay unchanged until this settles. */
  write(fh: number, data: Buffer, pos: number): Promise<number> {
    const h = this.#handle(fh);
    if (h instanceof OpenBase) fail('EBADF');
    if (h instanceof OpenDev || h instanceof OpenBin) return h.write(data, pos);
    this.#trace?.(`store ${h.node.path()} ${JSON.stringify(data.toString('latin1'))}`);
    return h.write(data);
  }

  /** Drop the handle. A device's close runs first, so whoever waits for it (a blocked `remove`) is released by the time this settles. */
  release(fh: number): void | Promise<void> {
    const h = this.#handles.get(fh);
    this.#handles.delete(fh);
    if (h instanceof OpenDev) return h.release();
    if (h instanceof OpenBase) h.release();
  }

  readlink(e: Entry): string {
    if (e instanceof BaseEntry) return e.stat.isSymbolicLink() ? this.view.base!.readlink(e.path) : fail('EINVAL');
    if (!(e instanceof KLink)) fail('EINVAL');
    return e.targetText();
  }

  /** chmod/chown/utimens/truncate on a tree node (EROFS in the base). */
  setattr(e: Entry, a: AttrChange): KNode {
    const n = this.own(e);
    if (a.mode !== undefined) n.mode = a.mode & 0o7777;
    if (a.uid !== undefined) n.uid = a.uid;
    if (a.gid !== undefined) n.gid = a.gid;
    if (a.atime !== undefined && Number.isFinite(a.atime)) n.atime = a.atime;
    if (a.mtime !== undefined && Number.isFinite(a.mtime)) n.mtime = a.mtime;
    if (a.mode !== undefined || a.uid !== undefined || a.gid !== undefined || a.atime !== undefined || a.mtime !== undefined) {
      n.ctime = Date.now();
    }
    return n;
  }

  /** A node of the tree to change; the base's entries are read-only. */
  own(e: Entry): KNode {
    return e instanceof BaseEntry ? fail('EROFS') : e;
  }

  /** A new name in `dir` (mkdir, create, mknod, link, symlink, rename's target): EROFS in the base, else `errno`. */
  refuseNew(dir: Entry | undefined, errno: ErrnoName): never {
    if (dir instanceof BaseEntry) fail('EROFS');
    return fail(errno);
  }

  /** Removing or renaming `e`: EROFS in the base, EPERM in the tree. */
  refuseChange(e: Entry): never {
    this.own(e);
    return fail('EPERM');
  }

  #alloc(h: Handle): number {
    // fh 0 would leave fuse-native's fh unset; fuse-native's fds are uint32.
    for (;;) {
      const fh = this.#nextFh;
      this.#nextFh = fh >= 0xfffffffe ? 1 : fh + 1;
      if (!this.#handles.has(fh)) {
        this.#handles.set(fh, h);
        return fh;
      }
    }
  }

  #handle(fh: number): Handle {
    return this.#handles.get(fh) ?? fail('EBADF');
  }
}

/** mknod(2) of a regular file goes through vfs_create (no ->create: EACCES); a FIFO, socket or device node through vfs_mknod (EPERM). */
export function mknodErrno(mode: number): ErrnoName {
  return (mode & S_IFMT) === S_IFREG || (mode & S_IFMT) === 0 ? 'EACCES' : 'EPERM';
}

/** The path of an entry from the top of the tree. */
export function pathOf(e: Entry): string {
  return e instanceof BaseEntry ? e.path : e.path();
}

function direntOf(name: string, e: Entry): Dirent {
  return e instanceof BaseEntry ? { name, mode: e.stat.mode, ino: e.ino } : { name, mode: e.typeBits | e.mode, ino: e.ino };
}
