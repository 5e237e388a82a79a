/**
 * A small virtual kernfs: the node tree behind sysfs (model: the kernel's
 * fs/kernfs — dir.c, file.c, symlink.c).
 *
 * - Directories hold their children in a Map, so a path lookup costs one Map
 *   hit per component, whatever the size of a directory.
 * - Every node knows its parent; symlinks point at a node, their text is
 *   relative (relative.ts, kernfs_get_target_path()).
 * - A removed node (and everything below it) is marked dead; an open file on a
 *   dead node fails with ENODEV (kernfs_get_active() failure).
 * - Attribute files carry show/store callbacks with sysfs semantics
 *   (fs/sysfs/file.c): a show is cut to PAGE_SIZE - 1 bytes, a store gets at
 *   most PAGE_SIZE bytes, a zero-length write stores nothing.
 * - Every node added or removed, and every changed() node, is told to the
 *   tree's watchers (KernfsRoot.watch) before the change returns.
 * - Device files (KDevFile): no snapshot, no PAGE_SIZE, no offset rule; each
 *   open(2) gets its own handle, read and written at its position (a char
 *   device's file_operations, reduced). Nothing here knows about FUSE or about the mdev core.
 */
import { MdevError, toMdevError } from '../core/errno.js';
import { isEntryName } from '../core/names.js';
import { asShowResult } from '../core/show.js';
import { relativeTarget } from './relative.js';

export { relativeTarget };

export const S_IFMT = 0o170000;
export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;

/** PAGE_SIZE: st_size of every attribute, the most a store receives. */
export const PAGE_SIZE = 4096;

export type Awaitable<T> = T | Promise<T>;

/** What an attribute file does when read or written. */
export interface AttrOps {
  /** The whole content, generated on a read from offset 0. Throw an errno to fail the read. */
  show?(): Awaitable<string | Uint8Array>;
  /**
   * One write(2), raw (at most PAGE_SIZE bytes, never empty). Throw an errno to
   * fail the write. Returning a number makes write(2) return it (a store that
   * consumed less); the default is the whole count.
   */
  store?(data: Buffer): Awaitable<void | number>;
}

/**
 * A device file's open instance (one per open(2)): reads and writes carry the
 * file position, as a char device's read/write do; `release` is the last
 * close of that open file description. Throw an errno to fail a call.
 */
export interface DevHandle {
  read(length: number, position: number): Awaitable<Buffer>;
  write(data: Buffer, position: number): Awaitable<number>;
  release(): Awaitable<void>;
}

/** What a device file does on open (the node's file_operations.open). */
export interface DevFileOps {
  /** open(2) flags as given; throw an errno to refuse the open. */
  open(flags: number): Awaitable<DevHandle>;
}

export type NodeKind = 'dir' | 'attr' | 'bin' | 'link' | 'dev';

/** The largest node inode: the lower half of FUSE's 32 bits (an overlay's base gets the upper). */
export const MAX_NODE_INO = 0x7fffffff;

/** A change of the tree's shape or of a node's attributes or content, as a watcher (a FUSE engine's cache) sees it. */
export type TreeChange = { kind: 'add' | 'remove'; parent: KDir; node: KNode } | { kind: 'change'; node: KNode };

/** What one tree shares: its inode numbers and its watchers. */
class TreeShared {
  private next = 2;
  readonly watchers = new Set<(c: TreeChange) => void>();
  alloc(): number {
    const n = this.next++;
    if (this.next > MAX_NODE_INO) this.next = 2;
    return n;
  }
  emit(c: TreeChange): void {
    for (const w of this.watchers) w(c);
  }
}

export abstract class KNode {
  abstract readonly kind: NodeKind;
  /** Permission bits (no type bits). Mutable: sysfs lets root chmod. */
  mode: number;
  uid = 0;
  gid = 0;
  atime: number;
  mtime: number;
  ctime: number;
  /** Set once the node has been removed from the tree. */
  dead = false;
  /** The directory holding this node; kept after removal so link text stays computable. */
  parent: KDir | null;
  readonly ino: number;

  constructor(
    readonly name: string,
    parent: KDir | null,
    mode: number,
    ino: number,
  ) {
    this.parent = parent;
    this.mode = mode;
    this.ino = ino;
    this.atime = this.mtime = this.ctime = Date.now();
  }

  /** Type bits for st_mode. */
  abstract get typeBits(): number;

  /** '/a/b/c' from the root ('' components joined), '/' for the root. */
  path(): string {
    const parts: string[] = [];
    for (let n: KNode | null = this; n && n.parent; n = n.parent) parts.push(n.name);
    return '/' + parts.reverse().join('/');
  }

  /** Detach from the parent and mark this node and everything below it dead. */
  remove(): void {
    const p = this.parent;
    if (p && !this.dead && p.children.get(this.name) === this) {
      p.children.delete(this.name);
      if (this.kind === 'dir') p.subdirs--;
      p.mtime = p.ctime = Date.now();
      p.generation++;
      this.kill();
      p.inos.emit({ kind: 'remove', parent: p, node: this });
      return;
    }
    this.kill();
  }
  /** Tell the tree's watchers that this node's attributes or content changed (a mode, a cached attribute's value). */
  changed(): void {
    if (!this.dead) this.parent?.inos.emit({ kind: 'change', node: this });
  }

  /** Mark dead without touching the parent (used for a subtree that goes away as a whole). */
  protected kill(): void {
    this.dead = true;
  }

  isAncestorOf(n: KNode): boolean {
    for (let p: KNode | null = n.parent; p; p = p.parent) if (p === (this as KNode)) return true;
    return false;
  }
}

export class KDir extends KNode {
  readonly kind = 'dir' as const;
  readonly children = new Map<string, KNode>();
  /** Counts additions and removals of children (readdir.ts caches the listing order by it). */
  generation = 0;
  /** Number of child directories (st_nlink = subdirs + 2, as kernfs). */
  subdirs = 0;
  /** One object as a whole (a device, a driver, a group): an overlay shows none of its base below it. */
  opaque = false;
  /** The tree's shared state (inode numbers, watchers). */
  readonly inos: TreeShared;

  constructor(name: string, parent: KDir | null, mode: number, inos: TreeShared, ino: number) {
    super(name, parent, mode, ino);
    this.inos = inos;
  }

  get typeBits(): number {
    return S_IFDIR;
  }

  get(name: string): KNode | undefined {
    return this.children.get(name);
  }

  has(name: string): boolean {
    return this.children.has(name);
  }

  private add<T extends KNode>(node: T): T {
    if (this.dead) throw new MdevError('ENOENT', `${this.path()} is gone`);
    if (this.children.has(node.name)) throw new MdevError('EEXIST', `${this.path()}/${node.name} exists`);
    if (!isEntryName(node.name)) {
      throw new MdevError('EINVAL', `bad sysfs name ${JSON.stringify(node.name as unknown)}`);
    }
    this.children.set(node.name, node);
    if (node.kind === 'dir') this.subdirs++;
    this.mtime = this.ctime = Date.now();
    this.generation++;
    if (this.inos.watchers.size) this.inos.emit({ kind: 'add', parent: this, node });
    return node;
  }

  /** A new subdirectory (EEXIST if the name is taken). */
  mkdir(name: string, mode = 0o755): KDir {
    return this.add(new KDir(name, this, mode, this.inos, this.inos.alloc()));
  }

  /** The existing subdirectory `name`, or a new one. EEXIST if a non-directory has that name. */
  ensureDir(name: string, mode = 0o755): KDir {
    const n = this.children.get(name);
    if (n) {
      if (n instanceof KDir) return n;
      throw new MdevError('EEXIST', `${n.path()} exists and is not a directory`);
    }
    return this.mkdir(name, mode);
  }

  /** ensureDir for every component of a relative path ('a/b/c'). */
  ensurePath(rel: string): KDir {
    let d: KDir = this;
    for (const c of rel.split('/')) if (c) d = d.ensureDir(c);
    return d;
  }

  /** A new attribute file. */
  attr(name: string, mode: number, ops: AttrOps): KAttr {
    return this.add(new KAttr(name, this, mode & 0o7777, ops, this.inos.alloc()));
  }

  /** A new device file (a char device's stand-in: regular file, st_size 0, per-open handles). */
  devFile(name: string, mode: number, ops: DevFileOps): KDevFile {
    return this.add(new KDevFile(name, this, mode & 0o7777, ops, this.inos.alloc()));
  }

  /** Add a node of a kind defined in another file (bin.ts), made with a fresh inode number. */
  adopt<T extends KNode>(make: (ino: number) => T): T {
    return this.add(make(this.inos.alloc()));
  }

  /** A new symlink pointing at `target` (its text is relative, computed by kernfs rules). */
  symlink(name: string, target: KNode): KLink {
    return this.add(new KLink(name, this, target, this.inos.alloc()));
  }

  /** Remove the child `name` if present. */
  removeChild(name: string): void {
    this.children.get(name)?.remove();
  }

  /**
   * Resolve a path relative to this directory, one Map lookup per component.
   * Symlinks are not followed (the VFS resolves them before asking us).
   */
  lookup(path: string): KNode | undefined {
    let n: KNode = this;
    let start = 0;
    const len = path.length;
    while (start < len) {
      let end = path.indexOf('/', start);
      if (end < 0) end = len;
      if (end > start) {
        if (!(n instanceof KDir)) return undefined;
        const next: KNode | undefined = n.children.get(path.slice(start, end));
        if (!next) return undefined;
        n = next;
      }
      start = end + 1;
    }
    return n;
  }

  protected override kill(): void {
    super.kill();
    // Iterative, so a deep or wide subtree cannot blow the stack.
    const stack: KNode[] = [...this.children.values()];
    while (stack.length) {
      const n = stack.pop()!;
      n.dead = true;
      if (n instanceof KDir) for (const c of n.children.values()) stack.push(c);
    }
  }
}

export class KAttr extends KNode {
  readonly kind = 'attr' as const;
  constructor(
    name: string,
    parent: KDir,
    mode: number,
    readonly ops: AttrOps,
    ino: number,
  ) {
    super(name, parent, mode, ino);
  }

  get typeBits(): number {
    return S_IFREG;
  }

  /**
   * Run the show (sysfs_kf_seq_show): EIO without one (the mdev/device
   * dispatchers' default) or for a result that is neither text nor bytes
   * (asShowResult); output cut to PAGE_SIZE - 1 bytes.
   */
  async show(): Promise<Buffer> {
    if (this.dead) throw new MdevError('ENODEV');
    if (!this.ops.show) throw new MdevError('EIO', `${this.path()} has no show`);
    let out: unknown;
    try {
      out = await this.ops.show();
    } catch (e) {
      throw toMdevError(e);
    }
    const content = asShowResult(out, this.path());
    let buf =
      typeof content === 'string' ? Buffer.from(content, 'utf8') : Buffer.from(content.buffer, content.byteOffset, content.byteLength);
    if (buf.length >= PAGE_SIZE) buf = buf.subarray(0, PAGE_SIZE - 1);
    return buf;
  }

  /**
   * One write(2) (kernfs_fop_write_iter + sysfs_kf_write): empty → 0 with no
   * store; more than PAGE_SIZE bytes → the first PAGE_SIZE are stored; EIO
   * without a store. Returns what write(2) returns.
   */
  async store(data: Buffer): Promise<number> {
    if (this.dead) throw new MdevError('ENODEV');
    if (data.length === 0) return 0;
    if (!this.ops.store) throw new MdevError('EIO', `${this.path()} has no store`);
    const chunk = data.length > PAGE_SIZE ? data.subarray(0, PAGE_SIZE) : data;
    let r: void | number;
    try {
      r = await this.ops.store(chunk);
    } catch (e) {
      throw toMdevError(e);
    }
    return typeof r === 'number' && Number.isInteger(r) && r >= 0 && r <= chunk.length ? r : chunk.length;
  }
}

/**
 * A device file. FUSE cannot serve real character devices, so it is a
 * regular file (st_size 0) whose opens, reads and writes go to `ops`; the
 * position of each read/write is passed through unchanged.
 */
export class KDevFile extends KNode {
  readonly kind = 'dev' as const;
  constructor(
    name: string,
    parent: KDir,
    mode: number,
    readonly ops: DevFileOps,
    ino: number,
  ) {
    super(name, parent, mode, ino);
  }

  get typeBits(): number {
    return S_IFREG;
  }
}

export class KLink extends KNode {
  readonly kind = 'link' as const;
  private text: string | undefined;
  constructor(
    name: string,
    parent: KDir,
    readonly target: KNode,
    ino: number,
  ) {
    super(name, parent, 0o777, ino);
  }

  get typeBits(): number {
    return S_IFLNK;
  }

  /** The link's text, e.g. '../../../devices/virtual/mtty/mtty/<uuid>'. */
  targetText(): string {
    if (this.text === undefined) this.text = relativeTarget(this.parent!, this.target);
    return this.text;
  }
}

/** The root of a tree. */
export class KernfsRoot extends KDir {
  constructor() {
    const inos = new TreeShared();
    super('', null, 0o755, inos, 1);
  }

  override remove(): void {
    throw new MdevError('EPERM', 'the root cannot be removed');
  }

  /** Call `fn` after every change of the tree (synchronously, inside the change); returns the unsubscribe. */
  watch(fn: (c: TreeChange) => void): () => void {
    this.inos.watchers.add(fn);
    return () => this.inos.watchers.delete(fn);
  }
}
