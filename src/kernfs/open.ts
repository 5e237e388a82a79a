/**
 * Open files of a kernfs tree: what a file descriptor holds (the kernel's
 * fs/kernfs/file.c kernfs_open_file, with sysfs's seq_file reads), and the
 * open-time permission check.
 */
import { MdevError, toMdevError } from '../core/errno.js';
import type { KBinAttr } from './bin.js';
import { KAttr, type DevHandle, type KDevFile, type KNode } from './nodes.js';

export const O_ACCMODE = 3;
export const O_RDONLY = 0;
export const O_WRONLY = 1;
export const O_RDWR = 2;

/**
 * The kernfs open-time check with KERNFS_ROOT_EXTRA_OPEN_PERM_CHECK
 * (kernfs_fop_open): EACCES, even for root, when opening for reading a node
 * with no read bit, or for writing a node with no write bit.
 */
export function checkOpen(node: KNode, flags: number): void {
  const acc = flags & O_ACCMODE;
  if (acc !== O_WRONLY && !(node.mode & 0o444)) throw new MdevError('EACCES');
  if (acc !== O_RDONLY && !(node.mode & 0o222)) throw new MdevError('EACCES');
}

/**
 * An open attribute (the kernfs_open_file + seq_file pair): a read at offset 0
 * runs the show and keeps the result; reads at later offsets are served from
 * that snapshot; past its end a read returns nothing. Each write is one store.
 */
export class OpenAttr {
  private snapshot: Buffer | null = null;
  constructor(
    readonly node: KAttr,
    readonly flags: number,
  ) {}

  async read(offset: number, length: number): Promise<Buffer> {
    if (this.node.dead) throw new MdevError('ENODEV');
    if (offset === 0 || this.snapshot === null) this.snapshot = await this.node.show();
    if (offset >= this.snapshot.length) return EMPTY;
    return this.snapshot.subarray(offset, Math.min(this.snapshot.length, offset + length));
  }

  /** The offset is ignored, as sysfs does. */
  write(data: Buffer): Promise<number> {
    if (this.node.dead) return Promise.reject(new MdevError('ENODEV'));
    return this.node.store(data);
  }
}

const EMPTY = Buffer.alloc(0);

/**
 * An open binary attribute: no snapshot; every read and write goes to the
 * node at its position (kernfs_file_read_iter / kernfs_fop_write_iter).
 */
export class OpenBin {
  constructor(
    readonly node: KBinAttr,
    readonly flags: number,
  ) {}

  async read(offset: number, length: number): Promise<Buffer> {
    if (this.node.dead) throw new MdevError('ENODEV');
    checkPosition(offset);
    return this.node.read(offset, length);
  }

  async write(data: Buffer, offset: number): Promise<number> {
    if (this.node.dead) throw new MdevError('ENODEV');
    checkPosition(offset);
    return this.node.write(offset, data);
  }
}

/** Open `node` with open(2) flags: EACCES per checkOpen, EISDIR for a directory. */
export function openAttr(node: KNode, flags: number): OpenAttr {
  if (node.dead) throw new MdevError('ENOENT');
  if (!(node instanceof KAttr)) throw new MdevError(node.kind === 'dir' ? 'EISDIR' : 'EINVAL');
  checkOpen(node, flags);
  return new OpenAttr(node, flags);
}

/** Open a binary attribute: EACCES per checkOpen. */
export function openBin(node: KBinAttr, flags: number): OpenBin {
  if (node.dead) throw new MdevError('ENOENT');
  checkOpen(node, flags);
  return new OpenBin(node, flags);
}

/**
 * Positions arrive as JS numbers (fuse-native joins two uint32 halves), exact
 * below 2^53; anything from there on may have been rounded: EINVAL rather
 * than a read at the wrong place.
 */
function checkPosition(pos: number): void {
  if (!Number.isSafeInteger(pos) || pos < 0) throw new MdevError('EINVAL', `position ${pos} is not exact below 2^53`);
}

/**
 * An open device file: its handle, plus the node so a descriptor whose file
 * has since been removed is told ENODEV before the handle is asked.
 */
export class OpenDev {
  #released: Promise<void> | undefined;
  constructor(
    readonly node: KDevFile,
    readonly flags: number,
    readonly handle: DevHandle,
  ) {}

  async read(offset: number, length: number): Promise<Buffer> {
    if (this.#released) throw new MdevError('EBADF');
    const acc = this.flags & O_ACCMODE;
    if (acc === O_WRONLY) throw new MdevError('EBADF');
    checkPosition(offset);
    try {
      return await this.handle.read(length, offset);
    } catch (e) {
      throw toMdevError(e);
    }
  }

  async write(data: Buffer, offset: number): Promise<number> {
    if (this.#released) throw new MdevError('EBADF');
    const acc = this.flags & O_ACCMODE;
    if (acc === O_RDONLY) throw new MdevError('EBADF');
    checkPosition(offset);
    let n: number;
    try {
      n = await this.handle.write(data, offset);
    } catch (e) {
      throw toMdevError(e);
    }
    return Number.isInteger(n) && n >= 0 && n <= data.length ? n : data.length;
  }

  /** The last close of this open file description (idempotent; never throws). */
  release(): Promise<void> {
    this.#released ??= (async () => {
      try {
        await this.handle.release();
      } catch {
        /* close(2) has already returned */
      }
    })();
    return this.#released;
  }
}

/** Open a device file: EACCES per checkOpen, then the node's own open. */
export async function openDev(node: KDevFile, flags: number): Promise<OpenDev> {
  if (node.dead) throw new MdevError('ENOENT');
  checkOpen(node, flags);
  let h: DevHandle;
  try {
    h = await node.ops.open(flags);
  } catch (e) {
    throw toMdevError(e);
  }
  return new OpenDev(node, flags, h);
}
