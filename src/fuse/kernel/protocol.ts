/**
 * The FUSE kernel protocol as mdevfs speaks it: opcodes, flags and the
 * little-endian struct layouts of include/uapi/linux/fuse.h (protocol 7.38),
 * decoded from requests and encoded into replies. Only what the engine uses.
 */
import type { NodeStat } from '../base-files.js';

export const FUSE_KERNEL_VERSION = 7;
export const FUSE_KERNEL_MINOR_VERSION = 38;
export const FUSE_ROOT_ID = 1;

/** enum fuse_opcode. */
export const Op = {
  LOOKUP: 1,
  FORGET: 2,
  GETATTR: 3,
  SETATTR: 4,
  READLINK: 5,
  SYMLINK: 6,
  MKNOD: 8,
  MKDIR: 9,
  UNLINK: 10,
  RMDIR: 11,
  RENAME: 12,
  LINK: 13,
  OPEN: 14,
  READ: 15,
  WRITE: 16,
  STATFS: 17,
  RELEASE: 18,
  FSYNC: 20,
  SETXATTR: 21,
  GETXATTR: 22,
  LISTXATTR: 23,
  REMOVEXATTR: 24,
  FLUSH: 25,
  INIT: 26,
  OPENDIR: 27,
  READDIR: 28,
  RELEASEDIR: 29,
  FSYNCDIR: 30,
  ACCESS: 34,
  CREATE: 35,
  INTERRUPT: 36,
  DESTROY: 38,
  POLL: 40,
  NOTIFY_REPLY: 41,
  BATCH_FORGET: 42,
  READDIRPLUS: 44,
  RENAME2: 45,
} as const;

/** fuse_init_in/out flags. */
export const Init = {
  ASYNC_READ: 1 << 0,
  ATOMIC_O_TRUNC: 1 << 3,
  BIG_WRITES: 1 << 5,
  DO_READDIRPLUS: 1 << 13,
  READDIRPLUS_AUTO: 1 << 14,
  PARALLEL_DIROPS: 1 << 18,
  MAX_PAGES: 1 << 22,
  CACHE_SYMLINKS: 1 << 23,
  EXPLICIT_INVAL_DATA: 1 << 25,
} as const;

/** fuse_open_out.open_flags. */
export const FOPEN_DIRECT_IO = 1 << 0;

/** fuse_setattr_in.valid. */
export const Fattr = {
  MODE: 1 << 0,
  UID: 1 << 1,
  GID: 1 << 2,
  SIZE: 1 << 3,
  ATIME: 1 << 4,
  MTIME: 1 << 5,
  ATIME_NOW: 1 << 7,
  MTIME_NOW: 1 << 8,
} as const;

/** enum fuse_notify_code (sent with unique 0 and the code in the error field). */
export const Notify = { INVAL_INODE: 2, INVAL_ENTRY: 3, RETRIEVE: 5 } as const;

export const IN_HEADER = 40;
export const OUT_HEADER = 16;
/** The largest write the worker reader accepts, and so its read buffer (plus room for the header and fuse_write_in). */
export const MAX_WRITE = 128 * 1024;
export const READ_BUFFER = MAX_WRITE + 4096;

/** struct fuse_in_header, and the body after it. */
export interface Request {
  opcode: number;
  unique: number;
  nodeid: number;
  uid: number;
  gid: number;
  pid: number;
  /** The bytes after the header (fuse_<op>_in, then names or data). */
  body: Buffer;
}

/** A u64 as a JS number: exact below 2^53, and then no longer a safe integer (callers check). */
export function u64(b: Buffer, off: number): number {
  return b.readUInt32LE(off) + b.readUInt32LE(off + 4) * 0x100000000;
}

function putU64(b: Buffer, off: number, v: number): void {
  b.writeUInt32LE(v >>> 0, off);
  b.writeUInt32LE(Math.floor(v / 0x100000000) >>> 0, off + 4);
}

export function parseRequest(msg: Uint8Array): Request {
  const b = Buffer.from(msg.buffer, msg.byteOffset, msg.byteLength);
  return {
    opcode: b.readUInt32LE(4),
    unique: u64(b, 8),
    nodeid: u64(b, 16),
    uid: b.readUInt32LE(24),
    gid: b.readUInt32LE(28),
    pid: b.readUInt32LE(32),
    body: b.subarray(IN_HEADER, Math.min(b.readUInt32LE(0), b.length)),
  };
}

/** A NUL-terminated name starting at `off` of `body`. */
export function cstring(body: Buffer, off = 0): string {
  const end = body.indexOf(0, off);
  return body.toString('utf8', off, end < 0 ? body.length : end);
}

/** struct fuse_out_header followed by `payload`; `error` is a negative errno or 0 (or a notify code, with unique 0). */
export function reply(unique: number, error: number, payload?: Buffer): Buffer {
  const len = OUT_HEADER + (payload ? payload.length : 0);
  const b = Buffer.allocUnsafe(len);
  b.writeUInt32LE(len, 0);
  b.writeInt32LE(error, 4);
  putU64(b, 8, unique);
  if (payload) payload.copy(b, OUT_HEADER);
  return b;
}

/** A validity in seconds as fuse.h wants it: u64 seconds and u32 nanoseconds. */
function putValid(b: Buffer, secOff: number, nsecOff: number, seconds: number): void {
  const s = Math.floor(seconds);
  putU64(b, secOff, s);
  b.writeUInt32LE(Math.round((seconds - s) * 1e9), nsecOff);
}

const ATTR_SIZE = 88;

/** struct fuse_attr (88 bytes) at `off`. */
function putAttr(b: Buffer, off: number, st: NodeStat): void {
  putU64(b, off, st.ino);
  putU64(b, off + 8, st.size);
  putU64(b, off + 16, st.blocks);
  const times = [st.atime, st.mtime, st.ctime];
  for (let i = 0; i < 3; i++) {
    const ms = times[i]!;
    const s = Math.floor(ms / 1000);
    putU64(b, off + 24 + 8 * i, Math.max(0, s));
    b.writeUInt32LE(Math.max(0, Math.min(999_999_999, Math.round((ms - s * 1000) * 1e6))), off + 48 + 4 * i);
  }
  b.writeUInt32LE(st.mode >>> 0, off + 60);
  b.writeUInt32LE(st.nlink >>> 0, off + 64);
  b.writeUInt32LE(st.uid >>> 0, off + 68);
  b.writeUInt32LE(st.gid >>> 0, off + 72);
  b.writeUInt32LE(st.rdev >>> 0, off + 76);
  b.writeUInt32LE(st.blksize >>> 0, off + 80);
  b.writeUInt32LE(0, off + 84);
}

export const ENTRY_OUT_SIZE = 40 + ATTR_SIZE;

/** struct fuse_entry_out (128 bytes) at `off` of `b`; nodeid 0 is a negative entry. */
export function putEntry(b: Buffer, off: number, nodeid: number, st: NodeStat | undefined, entryValid: number, attrValid: number): void {
  putU64(b, off, nodeid);
  putU64(b, off + 8, 0); // generation: node ids are never reused while the kernel knows them
  putValid(b, off + 16, off + 32, entryValid);
  putValid(b, off + 24, off + 36, attrValid);
  if (st) putAttr(b, off + 40, st);
  else b.fill(0, off + 40, off + 40 + ATTR_SIZE);
}

export function entryOut(nodeid: number, st: NodeStat | undefined, entryValid: number, attrValid: number): Buffer {
  const b = Buffer.allocUnsafe(ENTRY_OUT_SIZE);
  putEntry(b, 0, nodeid, st, entryValid, attrValid);
  return b;
}

/** struct fuse_attr_out. */
export function attrOut(st: NodeStat, attrValid: number): Buffer {
  const b = Buffer.allocUnsafe(16 + ATTR_SIZE);
  putValid(b, 0, 8, attrValid);
  b.writeUInt32LE(0, 12);
  putAttr(b, 16, st);
  return b;
}

/** struct fuse_open_out. */
export function openOut(fh: number, openFlags: number): Buffer {
  const b = Buffer.alloc(16);
  putU64(b, 0, fh);
  b.writeUInt32LE(openFlags, 8);
  return b;
}

/** struct fuse_write_out, fuse_poll_out and fuse_getxattr_out: one u32 and padding. */
export function u32Out(v: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt32LE(v >>> 0, 0);
  return b;
}

/** struct fuse_statfs_out (fuse_kstatfs). */
export function statfsOut(s: {
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
  bsize: number;
  namemax: number;
  frsize: number;
}): Buffer {
  const b = Buffer.alloc(80);
  [s.blocks, s.bfree, s.bavail, s.files, s.ffree].forEach((v, i) => putU64(b, 8 * i, v));
  b.writeUInt32LE(s.bsize, 40);
  b.writeUInt32LE(s.namemax, 44);
  b.writeUInt32LE(s.frsize, 48);
  return b;
}

/** Size of one struct fuse_dirent with its name, padded to 8 bytes. */
export function direntSize(nameLen: number, plus: boolean): number {
  return (plus ? ENTRY_OUT_SIZE : 0) + ((24 + nameLen + 7) & ~7);
}

/** struct fuse_dirent at `off`; `next` is the offset that resumes after it. */
export function putDirent(b: Buffer, off: number, ino: number, next: number, name: Buffer, mode: number): void {
  putU64(b, off, ino);
  putU64(b, off + 8, next);
  b.writeUInt32LE(name.length, off + 16);
  b.writeUInt32LE((mode >>> 12) & 0xf, off + 20);
  name.copy(b, off + 24);
  const end = off + direntSize(name.length, false);
  b.fill(0, off + 24 + name.length, end);
}

/** struct fuse_init_out (64 bytes). */
export function initOut(minor: number, maxReadahead: number, flags: number, maxWrite: number): Buffer {
  const b = Buffer.alloc(64);
  b.writeUInt32LE(FUSE_KERNEL_VERSION, 0);
  b.writeUInt32LE(minor, 4);
  b.writeUInt32LE(maxReadahead, 8);
  b.writeUInt32LE(flags >>> 0, 12);
  b.writeUInt16LE(64, 16); // max_background
  b.writeUInt16LE(48, 18); // congestion_threshold
  b.writeUInt32LE(maxWrite, 20);
  b.writeUInt32LE(1, 24); // time_gran: nanoseconds
  b.writeUInt16LE(Math.ceil(maxWrite / 4096), 28); // max_pages
  return b;
}

/**
 * FUSE_NOTIFY_INVAL_INODE: forget `nodeid`'s attributes, and with `data` its
 * page cache too (off 0, len 0: to the end; off -1: attributes only;
 * fs/fuse/inode.c fuse_reverse_inval_inode()).
 */
export function invalInode(nodeid: number, data: boolean): Buffer {
  const p = Buffer.alloc(24);
  putU64(p, 0, nodeid);
  if (!data) {
    p.writeInt32LE(-1, 8);
    p.writeInt32LE(-1, 12);
  }
  return reply(0, Notify.INVAL_INODE, p);
}

/** FUSE_NOTIFY_INVAL_ENTRY: forget the name `name` in directory `parent`. */
export function invalEntry(parent: number, name: string): Buffer {
  const n = Buffer.from(name);
  const p = Buffer.alloc(16 + n.length + 1);
  putU64(p, 0, parent);
  p.writeUInt32LE(n.length, 8);
  n.copy(p, 16);
  return reply(0, Notify.INVAL_ENTRY, p);
}

/**
 * FUSE_NOTIFY_RETRIEVE of a regular file the kernel holds (others are EINVAL
 * since 6.x), whose content is never cached: the kernel answers with a
 * NOTIFY_REPLY request carrying nothing, which wakes a blocked reader.
 */
export function retrieveNothing(nodeid: number): Buffer {
  const p = Buffer.alloc(32);
  putU64(p, 0, 0);
  putU64(p, 8, nodeid);
  p.writeUInt32LE(4096, 24);
  return reply(0, Notify.RETRIEVE, p);
}
