/**
 * The node ids the kernel holds, and what each stands for. A node id is the
 * entry's inode number (the root's is 1, FUSE_ROOT_ID; an overlay's base
 * entries number apart, src/overlay/view.ts), so st_ino and the node id agree
 * and a re-created node is a new id. Every LOOKUP answered (and every entry of
 * READDIRPLUS) adds one reference; FORGET and BATCH_FORGET take them back,
 * and an id whose count reaches 0 is dropped (fuse_lowlevel.h: the lookup
 * count). A removed node stays known until forgotten: an open descriptor's
 * fstat still reaches it, as on sysfs.
 */
import { S_IFREG, type KNode } from '../../kernfs/index.js';
import { BaseEntry, type Entry } from '../../overlay/index.js';
import { FUSE_ROOT_ID } from './protocol.js';

interface Known {
  entry: Entry;
  lookups: number;
}

export class NodeTable {
  readonly #nodes = new Map<number, Known>();
  readonly #root: KNode;

  constructor(root: KNode) {
    this.#root = root;
  }

  /** The entry a node id stands for (the root always), or undefined. */
  get(nodeid: number): Entry | undefined {
    if (nodeid === FUSE_ROOT_ID) return this.#root;
    return this.#nodes.get(nodeid)?.entry;
  }

  /** The node id for `e`, counting one more reference the kernel now holds. */
  remember(e: Entry): number {
    const id = e.ino;
    if (id === FUSE_ROOT_ID) return id;
    const k = this.#nodes.get(id);
    if (k) {
      k.lookups++;
      // A base entry is found afresh by each lookup (its stat with it).
      if (e instanceof BaseEntry || k.entry !== e) k.entry = e;
    } else {
      this.#nodes.set(id, { entry: e, lookups: 1 });
    }
    return id;
  }

  /** The kernel dropped `n` references to `nodeid`. */
  forget(nodeid: number, n: number): void {
    const k = this.#nodes.get(nodeid);
    if (!k) return;
    k.lookups -= n;
    if (k.lookups <= 0) this.#nodes.delete(nodeid);
  }

  /** The node id the kernel knows `node` by, if it knows it. */
  idOf(node: KNode): number | undefined {
    if (node === this.#root) return FUSE_ROOT_ID;
    return this.#nodes.get(node.ino)?.entry === node ? node.ino : undefined;
  }

  /** The node id of some regular file the kernel holds (reader.ts's wake-up), or undefined. */
  anyFile(): number | undefined {
    for (const [id, k] of this.#nodes) {
      const e = k.entry;
      if (e instanceof BaseEntry ? e.stat.isFile() : e.typeBits === S_IFREG) return id;
    }
    return undefined;
  }
}
