/**
 * The merged tree: a kernfs tree over a base directory, as overlayfs merges
 * an upper directory over a lower one (fs/overlayfs/namei.c ovl_lookup),
 * read-only and with these rules (docs/overlay.md):
 *
 * - a name in the tree wins over the same name in the base;
 * - directories that both have are merged, except below an opaque one
 *   (KDir.opaque: a device, driver or group is one object as a whole);
 * - `hidden` paths of the base never show (the mdev framework's own
 *   directories: a host's real mediated devices must not leak in);
 * - the base's entries get inode numbers in the upper half of 32 bits,
 *   where the tree's never go (MAX_NODE_INO), so the two never collide.
 *
 * A lookup walks the tree with one Map hit per component; where the tree has
 * nothing, it finds the deepest tree directory on the way and asks the base:
 * one lstat for the entry and one per tree directory above it (each must be
 * a real directory in the base, see #baseDirAt), never a directory scan.
 */
import type { Stats } from 'node:fs';
import { posix } from 'node:path';
import { KDir, type KNode, MAX_NODE_INO, readdirOrder } from '../kernfs/index.js';
import type { BaseDir } from './base-dir.js';

/** An entry of the base, found by a lookup. */
export class BaseEntry {
  constructor(
    /** Its path from the top ('/devices/system'). */
    readonly path: string,
    readonly stat: Stats,
    /** The device of the base's top: entries of other file systems below it (cgroup under fs/) number apart. */
    private readonly baseDev?: number,
  ) {}
  get isDir(): boolean {
    return this.stat.isDirectory();
  }
  get ino(): number {
    return baseIno(this.stat.ino, this.stat.dev, this.baseDev);
  }
}

export type Entry = KNode | BaseEntry;

/** One name in a listing, with what readdir reports of it. */
export interface Listed {
  name: string;
  mode: number;
  ino: number;
}

const QUARTER = 2 ** 30;

/**
 * A base entry's inode number, in the upper half of 32 bits where the tree's
 * never go: the base's own file system in its first quarter (ino as is, below
 * 2^30), file systems mounted below it (each numbering from 1) in the second,
 * mixed with their device number so that two of them rarely meet.
 */
export function baseIno(ino: number, dev?: number, baseDev?: number): number {
  const top = MAX_NODE_INO + 1;
  if (dev === undefined || baseDev === undefined || dev === baseDev) return top + (ino % QUARTER);
  return top + QUARTER + (((Math.imul(dev, 0x9e3779b1) + ino) >>> 0) % QUARTER);
}

export class OverlayView {
  readonly #hidden: readonly string[];

  constructor(
    readonly root: KDir,
    readonly base?: BaseDir,
    hidden: readonly string[] = [],
  ) {
    this.#hidden = hidden;
  }

  /** The entry at `path` ('/a/b'), or undefined. */
  resolve(path: string): Entry | undefined {
    const hit = this.root.lookup(path);
    if (hit || !this.base) return hit;
    // The base answers below the deepest directory of the tree on the way, unless it is opaque.
    let at = path;
    let d: KNode | undefined;
    do {
      at = posix.dirname(at);
      d = this.root.lookup(at);
    } while (!d && at !== '/');
    if (!(d instanceof KDir) || this.#opaqueChain(d) || !this.#baseDirAt(d, at)) return undefined;
    return this.#fromBase(path);
  }

  /** The listing of the directory entry `dir` at `path`: the tree's names first, in kernfs order, then the base's own. */
  list(dir: KDir | BaseEntry, path: string): Listed[] {
    const out: Listed[] = [];
    let shadow: ReadonlyMap<string, KNode> | undefined;
    if (dir instanceof KDir) {
      for (const c of readdirOrder(dir)) out.push({ name: c.name, mode: c.typeBits | c.mode, ino: c.ino });
      if (!this.base || this.#opaqueChain(dir) || !this.#baseDirAt(dir, path)) return out;
      shadow = dir.children;
    }
    const prefix = path === '/' ? '/' : path + '/';
    for (const name of this.base!.names(path)) {
      if (shadow?.has(name)) continue;
      const p = prefix + name;
      if (this.#isHidden(p)) continue;
      const st = this.base!.lstat(p);
      if (st) out.push({ name, mode: st.mode, ino: baseIno(st.ino, st.dev, this.base!.dev) });
    }
    return out;
  }

  /** Whether the base may add to the tree's directory `dir` (there is a base, and `dir` is not opaque). */
  mayMerge(dir: KDir): boolean {
    return !!this.base && !this.#opaqueChain(dir);
  }

  /** Whether the base has a directory at `path` below a merged tree directory (so its listing is merged). */
  merges(dir: KDir, path: string): boolean {
    return !!this.base && !this.#opaqueChain(dir) && this.#baseDirAt(dir, path);
  }

  /**
   * Whether the base's counterpart of the tree's directory `d` (at `path`) is
   * a directory reached through directories only. Where one of them is a
   * symlink the base is not merged there, since an lstat below it would
   * follow the link, possibly into our own mount, and a synchronous call there
   * never returns, even to SIGKILL. So every component is lstat'ed from the
   * top (one syscall each, for the few tree directories on the way), each
   * only once its parent is known to be a real directory.
   */
  #baseDirAt(d: KDir, path: string): boolean {
    if (d === this.root) return true;
    let at = 0;
    while (at >= 0) {
      at = path.indexOf('/', at + 1);
      if (!this.#lstat(at < 0 ? path : path.slice(0, at))?.isDirectory()) return false;
    }
    return true;
  }

  #fromBase(path: string): BaseEntry | undefined {
    const st = this.#lstat(path);
    return st ? new BaseEntry(path, st, this.base?.dev) : undefined;
  }

  #lstat(path: string): Stats | undefined {
    if (!this.base || this.#isHidden(path)) return undefined;
    return this.base.lstat(path);
  }

  #isHidden(path: string): boolean {
    for (const h of this.#hidden) if (path === h || (path.startsWith(h) && path.charCodeAt(h.length) === 47)) return true;
    return false;
  }

  #opaqueChain(d: KDir): boolean {
    for (let p: KDir | null = d; p; p = p.parent) if (p.opaque) return true;
    return false;
  }
}
