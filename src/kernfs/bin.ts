/**
 * Binary attribute files (the kernel's bin_attribute: include/linux/sysfs.h,
 * fs/sysfs/file.c sysfs_kf_bin_read / sysfs_kf_bin_write, and
 * fs/kernfs/file.c kernfs_file_read_iter): content of a fixed size, read at
 * any offset with no snapshot and no PAGE_SIZE - 1 cut.
 *
 * - st_size is the attribute's size (0: unknown, nothing is cut).
 * - A read returns at most PAGE_SIZE bytes (kernfs_file_read_iter), nothing
 *   at or past the end, and is cut at the end; each read calls `read`.
 * - A write at or past the end fails with EFBIG, is cut at the end, takes at
 *   most PAGE_SIZE bytes; an empty one writes nothing; no `write` → EIO.
 */
import { MdevError, toMdevError } from '../core/errno.js';
import { KNode, PAGE_SIZE, S_IFREG, type Awaitable, type KDir } from './nodes.js';

/** What a binary attribute does (bin_attribute's read and write). */
export interface BinOps {
  /** `length` bytes at `offset` (both already within the size); fewer is a short read. Throw an errno to fail. */
  read?(offset: number, length: number): Awaitable<Uint8Array>;
  /** `data` written at `offset` (within the size, never empty). A number returned is write(2)'s count. */
  write?(offset: number, data: Buffer): Awaitable<void | number>;
}

export class KBinAttr extends KNode {
  readonly kind = 'bin' as const;
  constructor(
    name: string,
    parent: KDir,
    mode: number,
    /** bin_attribute.size: st_size and where reads and writes stop (0: no limit). */
    readonly size: number,
    readonly ops: BinOps,
    ino: number,
  ) {
    super(name, parent, mode, ino);
  }

  get typeBits(): number {
    return S_IFREG;
  }

  /** One read(2) at `offset` (sysfs_kf_bin_read). */
  async read(offset: number, length: number): Promise<Buffer> {
    if (this.dead) throw new MdevError('ENODEV');
    let count = Math.min(length, PAGE_SIZE);
    if (count <= 0) return EMPTY;
    if (this.size) {
      if (offset >= this.size) return EMPTY;
      count = Math.min(count, this.size - offset);
    }
    if (!this.ops.read) throw new MdevError('EIO', `${this.path()} has no read`);
    let out: unknown;
    try {
      out = await this.ops.read(offset, count);
    } catch (e) {
      throw toMdevError(e);
    }
    if (!(out instanceof Uint8Array)) throw new MdevError('EIO', `${this.path()}: read returned ${typeof out}, not bytes`);
    const buf = Buffer.from(out.buffer, out.byteOffset, out.byteLength);
    return buf.length > count ? buf.subarray(0, count) : buf;
  }

  /** One write(2) at `offset` (sysfs_kf_bin_write). Returns what write(2) returns. */
  async write(offset: number, data: Buffer): Promise<number> {
    if (this.dead) throw new MdevError('ENODEV');
    let chunk = data.length > PAGE_SIZE ? data.subarray(0, PAGE_SIZE) : data;
    if (this.size) {
      if (offset >= this.size) throw new MdevError('EFBIG');
      if (chunk.length > this.size - offset) chunk = chunk.subarray(0, this.size - offset);
    }
    if (chunk.length === 0) return 0;
    if (!this.ops.write) throw new MdevError('EIO', `${this.path()} has no write`);
    let r: void | number;
    try {
      r = await this.ops.write(offset, chunk);
    } catch (e) {
      throw toMdevError(e);
    }
    return typeof r === 'number' && Number.isInteger(r) && r >= 0 && r <= chunk.length ? r : chunk.length;
  }
}

const EMPTY = Buffer.alloc(0);

/** A new binary attribute file `name` in `dir` (mode: permission bits; size: st_size). */
export function addBinAttr(dir: KDir, name: string, mode: number, size: number, ops: BinOps): KBinAttr {
  if (!Number.isSafeInteger(size) || size < 0) throw new MdevError('EINVAL', `${dir.path()}/${name}: bad size ${size}`);
  return dir.adopt(ino => new KBinAttr(name, dir, mode & 0o7777, size, ops, ino));
}
