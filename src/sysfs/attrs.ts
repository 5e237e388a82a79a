/**
 * A vendor's own attributes in the tree (the attribute groups of
 * include/linux/mdev.h and struct device): each show and store is a bounded
 * call into plugin code, so a plugin that throws or hangs fails that one read
 * or write (its errno, or ETIMEDOUT) and nothing else. What a show may return
 * is one rule everywhere (core/show.ts asShowResult).
 */
import type { Attribute, AttributeGroup, MdevType } from '../core/api.js';
import { showAttribute, showDescription, storeAttribute } from '../core/plugin-call.js';
import { KDir, type AttrOps, type KNode } from '../kernfs/index.js';

/** Default mode of a plugin attribute (api.ts Attribute.mode). */
export function defaultAttrMode(a: { show?: unknown; store?: unknown }): number {
  if (a.show && a.store) return 0o644;
  if (a.store) return 0o200;
  return 0o444;
}

export class PluginAttrs {
  constructor(
    private readonly timeoutMs: number,
    private readonly log: (m: string) => void,
  ) {}

  /** A type's `description` content, bounded like a show. */
  description(t: MdevType): Promise<string | Uint8Array | undefined> {
    return showDescription(t, this.timeoutMs);
  }

  /** A plugin attribute in `dir`; a name already taken is logged and skipped. */
  add<C>(dir: KDir, a: Attribute<C>, ctx: C, where: string): KNode | undefined {
    if (dir.has(a.name)) {
      this.log(`sysfs: ${where}: duplicate attribute '${a.name}' ignored`);
      return undefined;
    }
    const label = `${where}/${a.name}`;
    const ops: AttrOps = {};
    if (a.show) ops.show = () => showAttribute(a, ctx, this.timeoutMs, label);
    if (a.store) ops.store = data => storeAttribute(a, ctx, data.toString('utf8'), this.timeoutMs, label);
    return dir.attr(a.name, a.mode ?? defaultAttrMode(a), ops);
  }

  /** A group: its attributes in `dir`, or in a subdirectory named after the group. `own` records what was made. */
  addGroup<C>(dir: KDir, g: AttributeGroup<C>, ctx: C, own: (n: KNode) => void, where: string): void {
    let target = dir;
    if (g.name) {
      const existing = dir.get(g.name);
      if (existing instanceof KDir) {
        target = existing;
      } else {
        target = dir.mkdir(g.name);
        own(target);
      }
    }
    for (const a of g.attrs) {
      const n = this.add(target, a, ctx, g.name ? `${where}/${g.name}` : where);
      if (n && target === dir) own(n);
    }
  }
}
