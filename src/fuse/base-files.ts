/**
 * The FUSE side of an overlay's base entries (src/overlay): their stat, and
 * an open file that reads the real one. The base is read-only to everyone
 * (docs/overlay.md): every change is EROFS, as on a read-only mount, and
 * nothing reaches the host.
 */
import type { BaseDir, BaseEntry } from '../overlay/index.js';

/** A stat as both engines report it (times in ms since the epoch). */
export interface NodeStat {
  mode: number;
  uid: number;
  gid: number;
  size: number;
  nlink: number;
  ino: number;
  rdev: number;
  blksize: number;
  blocks: number;
  atime: number;
  mtime: number;
  ctime: number;
}

/** The stat of a base entry as FUSE reports it (its own inode number space). */
export function baseStatOf(e: BaseEntry): NodeStat {
  const s = e.stat;
  return {
    mode: s.mode,
    uid: s.uid,
    gid: s.gid,
    size: s.size,
    nlink: s.nlink,
    ino: e.ino,
    rdev: s.rdev,
    blksize: s.blksize,
    blocks: s.blocks,
    atime: s.atimeMs,
    mtime: s.mtimeMs,
    ctime: s.ctimeMs,
  };
}

/** One open(2) of a base file: the real file, open read-only, read at the caller's position. */
export class OpenBase {
  readonly #fd: number;
  constructor(
    private readonly base: BaseDir,
    entry: BaseEntry,
  ) {
    this.#fd = base.openRead(entry.path);
  }
  read(buf: Buffer, length: number, position: number): Promise<number> {
    return this.base.read(this.#fd, buf, Math.min(length, buf.length), position);
  }
  release(): void {
    this.base.closeFile(this.#fd);
  }
}
