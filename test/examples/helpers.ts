/** Shared helpers for the example-driver tests (in-memory, through the core). */
import { MdevCore } from '../../src/core/core.js';
import type { Attribute, MdevDevice, MdevType, Parent, Profile, VendorPlugin } from '../../src/core/api.js';

/** A fresh core with the plugins loaded. */
export async function coreWith(plugins: VendorPlugin | VendorPlugin[], profile: Profile = 'modern'): Promise<MdevCore> {
  const core = new MdevCore({ profile });
  for (const p of Array.isArray(plugins) ? plugins : [plugins]) await core.loadPlugin(p);
  return core;
}

/** The errno an operation fails with (a name, or a number mdevfs has no name for), or undefined. */
export async function errnoOf(op: Promise<unknown> | (() => unknown)): Promise<string | number | undefined> {
  try {
    await (typeof op === 'function' ? op() : op);
    return undefined;
  } catch (e) {
    const errno = (e as { errno?: unknown }).errno;
    return typeof errno === 'string' || typeof errno === 'number' ? errno : `not an errno: ${String(e)}`;
  }
}

/** A vendor attribute of a mediated device, as its parent's ops declare it. */
export function mdevAttr(dev: MdevDevice, group: string | undefined, name: string): Attribute<MdevDevice> {
  const g = dev.parent.ops.mdevAttrGroups?.find(gr => gr.name === group);
  const a = g?.attrs.find(at => at.name === name);
  if (!a) throw new Error(`no attribute ${group ?? ''}/${name}`);
  return a;
}

/** A parent identity file, as the parent spec declares it. */
export function parentAttr(parent: Parent, name: string): Attribute<Parent> {
  const a = parent.device.attrs?.flatMap(g => g.attrs).find(at => at.name === name);
  if (!a) throw new Error(`no parent attribute ${name}`);
  return a;
}

/** The description file's content of a type (the examples' descriptions are synchronous). */
export function description(type: MdevType): string | undefined {
  const d = type.spec.description;
  const text = typeof d === 'function' ? d(type) : d;
  if (text instanceof Promise) throw new Error(`${type.id}: asynchronous description`);
  return text instanceof Uint8Array ? Buffer.from(text).toString('utf8') : text;
}
