// Lookups on an in-memory MdevCore, for the tests that drive the core directly
// (test/config, test/examples): a parent or type by name, or a clear error.
import type { MdevCore } from '../../src/core/core.js';
import type { MdevType } from '../../src/core/api.js';
import type { CoreParent } from '../../src/core/model.js';

export function parentOf(core: MdevCore, name: string): CoreParent {
  const p = core.parent(name);
  if (!p) throw new Error(`no parent ${name}`);
  return p;
}

export function typeOf(core: MdevCore, parent: string, id: string): MdevType {
  const t = parentOf(core, parent).types.find(ty => ty.id === id);
  if (!t) throw new Error(`no type ${id} on ${parent}`);
  return t;
}

/** available_instances of every type of a parent, by type id. */
export function availability(core: MdevCore, parent: string): Record<string, number> {
  return Object.fromEntries(parentOf(core, parent).types.map(t => [t.id, core.availableInstances(t)]));
}
