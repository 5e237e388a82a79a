/**
 * A vendor's own attributes in the tree (the attribute groups of
 * include/linux/mdev.h and struct device): each show and store is a bounded
 * call into plugin code, so a plugin that throws or hangs fails that one read
 * or write (its errno, or ETIMEDOUT) and nothing else; the cause is logged
 * (--verbose), as the errno alone does not say it. What a show may return is
 * one rule everywhere (core/show.ts asShowResult).
 */
import type { Attribute, AttributeGroup, BinaryAttribute, MdevType } from '../core/api.js';
import { toMdevError } from '../core/errno.js';
import { faultTarget } from '../core/fault-target.js';
import type { FaultOp, FaultTable } from '../core/faults.js';
import { callPlugin, showAttribute, showDescription, storeAttribute } from '../core/plugin-call.js';
import { addBinAttr, KDir, type AttrOps, type BinOps, type KNode } from '../kernfs/index.js';

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
    private readonly faults?: FaultTable,
  ) {}

  /** An injected fault (core/faults.ts) fails or delays the call in the vendor's place. */
  #guard<T>(op: FaultOp, ctx: unknown, call: () => Promise<T>): Promise<T> {
    const hit = this.faults?.hit(op, faultTarget(ctx));
    return hit ? hit.catch(this.#failed).then(call) : call();
  }

  /** A failed plugin call: log its cause, then fail with its errno. */
  readonly #failed = (e: unknown): never => {
    const err = toMdevError(e);
    this.log(`sysfs: ${err.message} (${err.errno})`);
    throw err;
  };

  /** A bounded show of a plugin attribute, by the one show rule. */
  show<C>(a: Attribute<C>, ctx: C, where: string): Promise<string | Uint8Array> {
    return this.#guard('show', ctx, () => showAttribute(a, ctx, this.timeoutMs, `${where}/${a.name}`).catch(this.#failed));
  }

  /** A type's `description` content, bounded like a show. */
  description(t: MdevType): Promise<string | Uint8Array | undefined> {
    return showDescription(t, this.timeoutMs).catch(this.#failed);
  }

  /** A plugin attribute in `dir`; a name already taken is logged and skipped. */
  add<C>(dir: KDir, a: Attribute<C>, ctx: C, where: string): KNode | undefined {
    if (dir.has(a.name)) {
      this.log(`sysfs: ${where}: duplicate attribute '${a.name}' ignored`);
      return undefined;
    }
    const label = `${where}/${a.name}`;
    const ops: AttrOps = {};
    if (a.show) ops.show = () => this.#guard('show', ctx, () => showAttribute(a, ctx, this.timeoutMs, label).catch(this.#failed));
    if (a.store) {
      ops.store = data => this.#guard('store', ctx, () => storeAttribute(a, ctx, data, this.timeoutMs, label).catch(this.#failed));
    }
    return dir.attr(a.name, a.mode ?? defaultAttrMode(a), ops);
  }

  /** A plugin binary attribute in `dir` (bin_attribute); a name already taken is logged and skipped. */
  addBin<C>(dir: KDir, a: BinaryAttribute<C>, ctx: C, where: string): KNode | undefined {
    if (dir.has(a.name)) {
      this.log(`sysfs: ${where}: duplicate attribute '${a.name}' ignored`);
      return undefined;
    }
    if (!Number.isSafeInteger(a.size) || a.size < 0) {
      this.log(`sysfs: ${where}: binary attribute '${a.name}' has a bad size (${String(a.size)}); ignored`);
      return undefined;
    }
    const label = `${where}/${a.name}`;
    const timeoutMs = this.timeoutMs;
    const ops: BinOps = {};
    const { read, write } = a;
    if (read) {
      ops.read = (offset, length) =>
        callPlugin(() => read.call(a, ctx, offset, length), { what: `${label}: read`, timeoutMs }).catch(this.#failed);
    }
    if (write) {
      ops.write = async (offset, data) => {
        await callPlugin(() => write.call(a, ctx, offset, data), { what: `${label}: write`, timeoutMs }).catch(this.#failed);
      };
    }
    return addBinAttr(dir, a.name, a.mode ?? defaultAttrMode({ show: read, store: write }), a.size, ops);
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
    const at = g.name ? `${where}/${g.name}` : where;
    for (const a of g.attrs) {
      const n = this.add(target, a, ctx, at);
      if (n && target === dir) own(n);
    }
    for (const a of g.binAttrs ?? []) {
      const n = this.addBin(target, a, ctx, at);
      if (n && target === dir) own(n);
    }
  }
}
