/**
 * The opcodes the kernel engine answers, each a translation of a request
 * into a TreeFs call (../tree-fs.ts holds the sysfs rules) and its answer
 * into fuse.h's reply struct. An opcode missing here gets ENOSYS
 * (session.ts); for STATX, the xattr calls, IOCTL, LSEEK, FALLOCATE, TMPFILE
 * and locks the kernel then answers itself from its own fallbacks, which are
 * what mdevfs documents (docs/fuse.md#operations).
 */
import { posix } from 'node:path';
import { BaseEntry, type Entry } from '../../overlay/index.js';
import { STATFS, fail, isDirEntry, mknodErrno, pathOf, type AttrChange } from '../tree-fs.js';
import {
  Fattr,
  FOPEN_DIRECT_IO,
  Init,
  FUSE_KERNEL_MINOR_VERSION,
  Op,
  attrOut,
  cstring,
  direntSize,
  entryOut,
  initOut,
  openOut,
  putDirent,
  putEntry,
  statfsOut,
  u32Out,
  u64,
  type Request,
} from './protocol.js';
import type { ServeContext } from './context.js';

/** No reply at all (FORGET, BATCH_FORGET, INTERRUPT, NOTIFY_REPLY). */
export const NO_REPLY = Symbol('no reply');
/** A reply's payload, 0 for an empty success, or no reply. */
export type Answer = Buffer | 0 | typeof NO_REPLY;
type Handler = (s: ServeContext, r: Request) => Answer | Promise<Answer>;

const UNCHANGED_ID = 0xffffffff;

function node(s: ServeContext, r: Request): Entry {
  return s.nodes.get(r.nodeid) ?? fail('ENOENT');
}

/** A node's attributes, fresh: a base entry is looked up again (the host's file may have changed or gone). */
function fresh(s: ServeContext, e: Entry): Entry {
  return e instanceof BaseEntry ? (s.fs.view.resolve(e.path) ?? fail('ENOENT')) : e;
}

function entryReply(s: ServeContext, e: Entry): Buffer {
  const v = s.validity(e);
  return entryOut(s.nodes.remember(e), s.fs.stat(e), v.entry, v.attr);
}

function init(s: ServeContext, r: Request): Answer {
  const minor = r.body.readUInt32LE(4);
  const readahead = r.body.readUInt32LE(8);
  const offered = r.body.readUInt32LE(12);
  let want = Init.ASYNC_READ | Init.ATOMIC_O_TRUNC | Init.BIG_WRITES | Init.PARALLEL_DIROPS | Init.MAX_PAGES | Init.EXPLICIT_INVAL_DATA;
  if (s.cache.entry > 0) want |= Init.CACHE_SYMLINKS | Init.DO_READDIRPLUS | Init.READDIRPLUS_AUTO;
  s.minor = Math.min(minor, FUSE_KERNEL_MINOR_VERSION);
  s.flags = offered & want;
  return initOut(s.minor, readahead, s.flags, s.maxWrite);
}

function lookup(s: ServeContext, r: Request): Answer {
  const dir = node(s, r);
  if (!isDirEntry(dir)) fail('ENOTDIR');
  const e = s.fs.child(dir, cstring(r.body)) ?? fail('ENOENT');
  return entryReply(s, e);
}

function forget(s: ServeContext, r: Request): Answer {
  s.nodes.forget(r.nodeid, u64(r.body, 0));
  return NO_REPLY;
}

function batchForget(s: ServeContext, r: Request): Answer {
  const count = r.body.readUInt32LE(0);
  for (let i = 0, off = 8; i < count && off + 16 <= r.body.length; i++, off += 16) s.nodes.forget(u64(r.body, off), u64(r.body, off + 8));
  return NO_REPLY;
}

function getattr(s: ServeContext, r: Request): Answer {
  const e = fresh(s, node(s, r));
  return attrOut(s.fs.stat(e), s.validity(e).attr);
}

function setattr(s: ServeContext, r: Request): Answer {
  const b = r.body;
  const valid = b.readUInt32LE(0);
  const a: AttrChange = {};
  const now = Date.now();
  if (valid & Fattr.MODE) a.mode = b.readUInt32LE(68);
  if (valid & Fattr.UID && b.readUInt32LE(76) !== UNCHANGED_ID) a.uid = b.readUInt32LE(76);
  if (valid & Fattr.GID && b.readUInt32LE(80) !== UNCHANGED_ID) a.gid = b.readUInt32LE(80);
  if (valid & Fattr.ATIME) a.atime = valid & Fattr.ATIME_NOW ? now : u64(b, 32) * 1000 + b.readUInt32LE(56) / 1e6;
  if (valid & Fattr.MTIME) a.mtime = valid & Fattr.MTIME_NOW ? now : u64(b, 40) * 1000 + b.readUInt32LE(60) / 1e6;
  // truncate(2) and O_TRUNC are accepted and ignored, as sysfs does.
  if (valid & Fattr.SIZE) a.size = u64(b, 16);
  const e = node(s, r);
  s.fs.setattr(e, a);
  return attrOut(s.fs.stat(e), s.validity(e).attr);
}

function readlink(s: ServeContext, r: Request): Answer {
  return Buffer.from(s.fs.readlink(node(s, r)));
}

/**
 * Run `fn`, then (failed or not) wait until the tree's changes so far have
 * reached the kernel's caches: for requests whose caller holds no directory
 * lock (WRITE, a device's OPEN and RELEASE), since an INVAL_ENTRY may wait
 * for one (docs/fuse.md#the-kernel-engine).
 */
async function settled<T>(s: ServeContext, fn: () => T | Promise<T>): Promise<T> {
  try {
    return await fn();
  } finally {
    await s.flushed();
  }
}

function open(s: ServeContext, r: Request): Answer | Promise<Answer> {
  const fh = s.fs.open(node(s, r), r.body.readUInt32LE(0));
  // direct_io: every read and write reaches the tree (docs/fuse.md#mount-options).
  return typeof fh === 'number' ? openOut(fh, FOPEN_DIRECT_IO) : settled(s, () => fh).then(h => openOut(h, FOPEN_DIRECT_IO));
}

async function read(s: ServeContext, r: Request): Promise<Answer> {
  return s.fs.read(u64(r.body, 0), u64(r.body, 8), r.body.readUInt32LE(16));
}

async function write(s: ServeContext, r: Request): Promise<Answer> {
  const size = r.body.readUInt32LE(16);
  // The request's buffer is ours alone (reader.ts copies each one): no copy needed.
  // The tree's changes reach the kernel's caches before the writer sees its write return.
  const n = await settled(s, () => s.fs.write(u64(r.body, 0), r.body.subarray(40, 40 + size), u64(r.body, 8)));
  return u32Out(n);
}

async function release(s: ServeContext, r: Request): Promise<Answer> {
  // A device's close may let a waiting `remove` change the tree.
  await settled(s, () => s.fs.release(u64(r.body, 0)));
  return 0;
}

function opendir(s: ServeContext, r: Request): Answer {
  const d = node(s, r);
  s.fs.opendir(d, r.body.readUInt32LE(0));
  const p = pathOf(d);
  const up = p === '/' ? d : (s.fs.view.resolve(posix.dirname(p)) ?? d);
  return openOut(s.allocDir(s.fs.list(d, up)), 0);
}

function readdir(s: ServeContext, r: Request, plus: boolean): Answer {
  const dir = s.dirs.get(u64(r.body, 0)) ?? fail('EBADF');
  const dirEntry = plus ? node(s, r) : undefined;
  let off = u64(r.body, 8);
  const size = r.body.readUInt32LE(16);
  const out = Buffer.allocUnsafe(size);
  let used = 0;
  for (; off < dir.entries.length; off++) {
    const d = dir.entries[off]!;
    const name = Buffer.from(d.name);
    const len = direntSize(name.length, plus);
    if (used + len > size) break;
    if (plus) {
      // `.` and `..` and a name gone since OPENDIR: no entry (node id 0), so no lookup counted.
      const e = d.name === '.' || d.name === '..' ? undefined : s.fs.child(dirEntry!, d.name);
      const v = e && s.validity(e);
      if (e && v) putEntry(out, used, s.nodes.remember(e), s.fs.stat(e), v.entry, v.attr);
      else putEntry(out, used, 0, undefined, 0, 0);
      putDirent(out, used + len - direntSize(name.length, false), d.ino, off + 1, name, d.mode);
    } else {
      putDirent(out, used, d.ino, off + 1, name, d.mode);
    }
    used += len;
  }
  return out.subarray(0, used);
}

function access(s: ServeContext, r: Request): Answer {
  s.fs.access(node(s, r), r.body.readUInt32LE(0));
  return 0;
}

/** The directory a new name would go in, then the refusal (EROFS in the base). */
function refuseNew(errno: 'EPERM' | 'EACCES') {
  return (s: ServeContext, r: Request): Answer => s.fs.refuseNew(s.nodes.get(r.nodeid), errno);
}

function refuseChange(s: ServeContext, r: Request): Answer {
  const e = s.fs.child(node(s, r), cstring(r.body)) ?? fail('ENOENT');
  return s.fs.refuseChange(e);
}

function rename(s: ServeContext, r: Request, bodyOff: number): Answer {
  const src = s.fs.child(node(s, r), cstring(r.body, bodyOff)) ?? fail('ENOENT');
  s.fs.own(src);
  return s.fs.refuseNew(s.nodes.get(u64(r.body, 0)), 'EPERM');
}

export const HANDLERS: Record<number, Handler> = {
  [Op.INIT]: init,
  [Op.DESTROY]: () => 0,
  [Op.LOOKUP]: lookup,
  [Op.FORGET]: forget,
  [Op.BATCH_FORGET]: batchForget,
  [Op.INTERRUPT]: () => NO_REPLY, // every request is answered anyway; a plugin call is bounded by --call-timeout
  [Op.NOTIFY_REPLY]: () => NO_REPLY, // reader.ts's wake-up
  [Op.GETATTR]: getattr,
  [Op.SETATTR]: setattr,
  [Op.READLINK]: readlink,
  [Op.OPEN]: open,
  [Op.READ]: read,
  [Op.WRITE]: write,
  // Nothing to flush; answered (not ENOSYS) so that close(2) reports a dead connection as with fuse-native.
  [Op.FLUSH]: () => 0,
  [Op.FSYNC]: () => 0,
  [Op.RELEASE]: release,
  [Op.OPENDIR]: opendir,
  [Op.READDIR]: (s, r) => readdir(s, r, false),
  [Op.READDIRPLUS]: (s, r) => readdir(s, r, true),
  [Op.RELEASEDIR]: (s, r) => (s.dirs.delete(u64(r.body, 0)), 0),
  // kernfs's directory file_operations have no fsync: EINVAL (vfs_fsync_range).
  [Op.FSYNCDIR]: () => fail('EINVAL'),
  [Op.STATFS]: () => statfsOut(STATFS),
  [Op.ACCESS]: access,
  // The namespace belongs to the kernel (tree-fs.ts).
  [Op.CREATE]: refuseNew('EACCES'),
  [Op.MKNOD]: (s, r) => s.fs.refuseNew(s.nodes.get(r.nodeid), mknodErrno(r.body.readUInt32LE(0))),
  [Op.MKDIR]: refuseNew('EPERM'),
  [Op.SYMLINK]: refuseNew('EPERM'),
  [Op.LINK]: refuseNew('EPERM'),
  [Op.UNLINK]: refuseChange,
  [Op.RMDIR]: refuseChange,
  [Op.RENAME]: (s, r) => rename(s, r, 8),
  [Op.RENAME2]: (s, r) => rename(s, r, 16),
};
