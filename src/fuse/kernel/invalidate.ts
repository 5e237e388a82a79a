/**
 * Exactness with caching on: every change of the tree is pushed to the
 * kernel's caches as a notification before the write that caused it returns
 * (session.ts flushed(), awaited by WRITE), so a device's files exist when
 * `create` returns and are gone when `remove` returns, caches or not.
 *
 * - a node removed: INVAL_ENTRY for its name (the kernel drops the dentry and
 *   everything below it, d_invalidate());
 * - a node added: nothing, since failed lookups are never cached (LOOKUP
 *   answers ENOENT, so the negative entry has timeout 0) and a directory's
 *   attributes (st_nlink, st_mtime) are never cached (session.ts validity());
 * - a node changed (KNode.changed(), e.g. its mode): its attributes (and page
 *   cache, though content is never cached today: every open is direct I/O).
 * Only nodes the kernel holds are named (NodeTable); changes in one turn
 * of the event loop go out together, each node once.
 */
import type { TreeChange } from '../../kernfs/index.js';
import type { NodeTable } from './nodes.js';
import { invalEntry, invalInode } from './protocol.js';

export class Invalidator {
  readonly #entries: Buffer[] = [];
  readonly #data = new Set<number>();

  constructor(private readonly nodes: NodeTable) {}

  /** The tree watcher (KernfsRoot.watch). */
  readonly onChange = (c: TreeChange): void => {
    if (c.kind === 'change') {
      const id = this.nodes.idOf(c.node);
      if (id !== undefined) this.#data.add(id);
      return;
    }
    // Only a node the kernel holds can have a (positive) dentry to drop.
    if (c.kind === 'add' || this.nodes.idOf(c.node) === undefined) return;
    const parent = this.nodes.idOf(c.parent);
    if (parent !== undefined) this.#entries.push(invalEntry(parent, c.node.name));
  };

  /** Whether anything waits to be sent. */
  get pending(): boolean {
    return this.#entries.length > 0 || this.#data.size > 0;
  }

  /** The notifications gathered so far, in a safe order (names first), and forget them. */
  take(): Buffer[] {
    const out = this.#entries.splice(0);
    for (const id of this.#data) out.push(invalInode(id, true));
    this.#data.clear();
    return out;
  }
}
