/**
 * A config's attributes as plugin attributes: each parsed once (attrDefs),
 * its values rendered per object from the templates (render), a store
 * replacing the object's value (buildAttrs, buildGroups by subdirectory).
 */
import type { Attribute, AttributeGroup } from '../core/api.js';
import { parseTemplate, renderTemplate, type TemplatePart } from './template.js';
import type { AttrMap } from './types.js';

/** One attribute of the config, parsed once. */
export interface AttrDef {
  group: string | undefined;
  name: string;
  template: TemplatePart[];
  mode: number | undefined;
  readable: boolean;
  writable: boolean;
}

export function attrDefs(map: AttrMap | undefined): AttrDef[] {
  return Object.entries(map ?? {}).map(([key, v]) => {
    const slash = key.indexOf('/');
    const spec = typeof v === 'string' ? { value: v } : v;
    const mode = spec.mode === undefined ? undefined : parseInt(spec.mode, 8);
    const t = parseTemplate(spec.value ?? '');
    if (!t.ok) throw new Error(`unvalidated template in ${key}: ${t.error}`); // validateConfig rules this out
    return {
      group: slash < 0 ? undefined : key.slice(0, slash),
      name: slash < 0 ? key : key.slice(slash + 1),
      template: t.parts,
      mode,
      readable: mode === undefined || (mode & 0o444) !== 0,
      writable: spec.writable ?? (mode !== undefined && (mode & 0o222) !== 0),
    };
  });
}

/**
 * Attributes whose values live in a per-object store: `values(ctx)` gives the
 * object's current values (rendered from the templates on first use), a store
 * replaces one.
 */
export function buildAttrs<Ctx>(defs: readonly AttrDef[], values: (ctx: Ctx) => Map<AttrDef, string>): Attribute<Ctx>[] {
  return defs.map(def => {
    const attr: Attribute<Ctx> = { name: def.name };
    if (def.mode !== undefined) attr.mode = def.mode;
    if (def.readable) attr.show = ctx => values(ctx).get(def) ?? '';
    if (def.writable)
      attr.store = (ctx, value) => {
        values(ctx).set(def, value);
      };
    return attr;
  });
}

/** Group attributes by subdirectory, in the order the config lists them. */
export function buildGroups<Ctx>(defs: readonly AttrDef[], values: (ctx: Ctx) => Map<AttrDef, string>): AttributeGroup<Ctx>[] {
  const byGroup = new Map<string | undefined, AttrDef[]>();
  for (const d of defs) {
    const g = byGroup.get(d.group);
    if (g) g.push(d);
    else byGroup.set(d.group, [d]);
  }
  return [...byGroup].map(([name, ds]) =>
    name === undefined ? { attrs: buildAttrs(ds, values) } : { name, attrs: buildAttrs(ds, values) },
  );
}

export function render(defs: readonly AttrDef[], vars: Readonly<Record<string, string>>): Map<AttrDef, string> {
  return new Map(defs.map(d => [d, renderTemplate(d.template, vars)]));
}
