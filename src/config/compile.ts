/**
 * Config → VendorPlugin. A declarative file is not a second implementation of
 * a vendor driver: it compiles to an ordinary plugin whose init registers each
 * parent through MdevHost.registerDevice with ParentOps built from the
 * capacity pieces of capacity.ts, exactly as a hand-written plugin would.
 */
import type {
  Attribute,
  AttributeGroup,
  DeviceApi,
  MdevDevice,
  MdevHost,
  MdevType,
  MdevTypeSpec,
  Parent,
  ParentDeviceSpec,
  ParentOps,
  Profile,
  VendorPlugin,
} from '../core/api.js';
import { oneTypeAtATime, ParentCapacity, perTypeMax, sharedCount, sharedPool, type CapacityRule } from './capacity.js';
import { assertValidConfig } from './validate.js';
import { pciConfigOf } from './pci-config.js';
import { parseTemplate, renderTemplate, type TemplatePart } from './template.js';
import {
  DEFAULT_CONFLICT_ERRNO,
  DEFAULT_EXHAUSTED_ERRNO,
  type AttrMap,
  type ConfigDoc,
  type ParentConfig,
  type TypeConfig,
} from './types.js';

export interface CompileOptions {
  /** The plugin's name; overrides doc.name. Default doc.name, else 'config'. */
  name?: string;
}

/** One attribute of the config, parsed once. */
interface AttrDef {
  group: string | undefined;
  name: string;
  template: TemplatePart[];
  mode: number | undefined;
  readable: boolean;
  writable: boolean;
}

function attrDefs(map: AttrMap | undefined): AttrDef[] {
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
function buildAttrs<Ctx>(defs: readonly AttrDef[], values: (ctx: Ctx) => Map<AttrDef, string>): Attribute<Ctx>[] {
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
function buildGroups<Ctx>(defs: readonly AttrDef[], values: (ctx: Ctx) => Map<AttrDef, string>): AttributeGroup<Ctx>[] {
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

function render(defs: readonly AttrDef[], vars: Readonly<Record<string, string>>): Map<AttrDef, string> {
  return new Map(defs.map(d => [d, renderTemplate(d.template, vars)]));
}

/** The `registerDevice` arguments for one configured parent (fresh state on every call). */
export function compileParent(p: ParentConfig, profile: Profile = 'modern'): { device: ParentDeviceSpec; ops: ParentOps } {
  const name = p.path.slice(p.path.lastIndexOf('/') + 1);
  const parentVars = { parent: name, path: p.path, prefix: p.typePrefix };
  const parentDeviceApi: DeviceApi = p.deviceApi ?? 'vfio-pci';
  const typeCfg = new Map<string, TypeConfig>(p.types.map(t => [t.id, t]));
  const cfgOf = (t: MdevType): TypeConfig | undefined => typeCfg.get(t.spec.id);

  // Capacity.
  const cap = p.capacity;
  let capacity: ParentCapacity<MdevType> | undefined;
  let maxInstances: number | undefined;
  if (cap.model === 'counter') {
    // The modern core enforces ParentOps.maxInstances itself (EUSERS). The
    // legacy profile would only show it (max - devices), as 4.10 had no core
    // counter; there the plugin keeps the same count, as the 4.10 vendors did.
    if (profile === 'legacy') capacity = new ParentCapacity([sharedCount<MdevType>(cap.maxInstances, 'EUSERS')]);
    else maxInstances = cap.maxInstances;
  } else {
    const rules: CapacityRule<MdevType>[] = [];
    if (cap.oneTypeAtATime) rules.push(oneTypeAtATime(cap.conflictErrno ?? DEFAULT_CONFLICT_ERRNO));
    const errno = cap.exhaustedErrno ?? DEFAULT_EXHAUSTED_ERRNO;
    if (cap.model === 'fixed') rules.push(perTypeMax(t => cfgOf(t)?.max ?? 0, errno));
    else rules.push(sharedPool(cap.size, t => cfgOf(t)?.cost ?? 1, { max: t => cfgOf(t)?.max, errno }));
    capacity = new ParentCapacity(rules);
  }

  // Parent attributes: one set of values per parent.
  const parentDefs = attrDefs(p.attrs);
  const devAttrDefs = attrDefs(p.devAttrs);
  const parentValues = render([...parentDefs, ...devAttrDefs], parentVars);
  const parentStore = (): Map<AttrDef, string> => parentValues;

  // Type attributes: one set of values per type.
  const typeVars = (t: MdevType): Record<string, string> => ({
    ...parentVars,
    type: t.id,
    type_id: t.spec.id,
    type_name: t.name,
    device_api: t.deviceApi,
  });
  const typeDefs = new Map(p.types.map(t => [t.id, attrDefs(t.attrs)]));
  const typeValues = new Map<string, Map<AttrDef, string>>();
  const typeStore = (t: MdevType): Map<AttrDef, string> => {
    let m = typeValues.get(t.spec.id);
    if (!m) typeValues.set(t.spec.id, (m = render(typeDefs.get(t.spec.id) ?? [], typeVars(t))));
    return m;
  };

  // Device attributes: one set of values per device, rendered at create.
  const deviceDefs = attrDefs(p.deviceAttrs);
  const devices = new Map<string, { index: number; values: Map<AttrDef, string> }>();
  const lowestFreeIndex = (): number => {
    const used = new Set([...devices.values()].map(d => d.index));
    let i = 0;
    while (used.has(i)) i++;
    return i;
  };
  const deviceState = (dev: MdevDevice): { index: number; values: Map<AttrDef, string> } => {
    let s = devices.get(dev.uuid);
    if (!s) {
      const index = lowestFreeIndex();
      s = { index, values: render(deviceDefs, { ...typeVars(dev.type), uuid: dev.uuid, index: String(index), index1: String(index + 1) }) };
      devices.set(dev.uuid, s);
    }
    return s;
  };

  const types: MdevTypeSpec[] = p.types.map(t => {
    const spec: MdevTypeSpec = { id: t.id, data: t };
    if (t.name !== undefined) spec.name = t.name;
    if (t.description !== undefined) spec.description = t.description;
    if (t.deviceApi !== undefined) spec.deviceApi = t.deviceApi;
    if (t.legacyAttrs !== undefined) spec.legacyAttrs = [...t.legacyAttrs];
    const defs = typeDefs.get(t.id)!;
    if (defs.length) spec.attrs = buildAttrs<MdevType>(defs, typeStore);
    return spec;
  });

  const device: ParentDeviceSpec = { path: p.path, typePrefix: p.typePrefix };
  if (p.subsystem) device.subsystem = { ...p.subsystem };
  if (p.parentDriver !== undefined) device.driver = p.parentDriver;
  if (p.iommuGroup !== undefined) device.iommuGroup = p.iommuGroup;
  if (parentDefs.length) device.attrs = buildGroups<Parent>(parentDefs, parentStore);
  const config = pciConfigOf(p, parentVars);
  if (config) (device.attrs ??= []).push({ attrs: [], binAttrs: [config] });

  const ops: ParentOps = {
    driver: p.driver,
    deviceApi: parentDeviceApi,
    types,
    create(dev) {
      const had = devices.has(dev.uuid);
      try {
        capacity?.claim(dev);
      } catch (e) {
        if (!had) devices.delete(dev.uuid);
        throw e;
      }
      deviceState(dev);
    },
    remove(dev) {
      capacity?.release(dev);
      devices.delete(dev.uuid);
    },
  };
  if (capacity) {
    const c = capacity;
    ops.getAvailable = t => c.available(t);
  }
  if (maxInstances !== undefined) ops.maxInstances = maxInstances;
  if (devAttrDefs.length) ops.devAttrGroups = buildGroups<Parent>(devAttrDefs, parentStore);
  if (deviceDefs.length) ops.mdevAttrGroups = buildGroups<MdevDevice>(deviceDefs, dev => deviceState(dev).values);
  return { device, ops };
}

/**
 * Validate `doc` (throwing a ConfigError that lists every problem) and turn it
 * into a VendorPlugin. Its init registers every parent in order; if one fails,
 * the ones already registered are unregistered before the error propagates,
 * so a config is loaded completely or not at all.
 */
export function compileConfig(doc: unknown, opts: CompileOptions = {}): VendorPlugin {
  assertValidConfig(doc);
  const cfg: ConfigDoc = structuredClone(doc);
  const registered = new WeakMap<MdevHost, Parent[]>();
  return {
    name: opts.name ?? cfg.name ?? 'config',
    async init(mdev) {
      const mine: Parent[] = [];
      registered.set(mdev, mine);
      try {
        for (const p of cfg.parents) {
          const { device, ops } = compileParent(p, mdev.profile);
          mine.push(await mdev.registerDevice(device, ops));
        }
      } catch (e) {
        for (const parent of mine.splice(0).reverse()) {
          try {
            await mdev.unregisterDevice(parent);
          } catch {
            /* already gone */
          }
        }
        throw e;
      }
    },
    async exit(mdev) {
      const mine = registered.get(mdev) ?? [];
      registered.delete(mdev);
      for (const parent of mine.reverse()) {
        try {
          await mdev.unregisterDevice(parent);
        } catch {
          /* already gone */
        }
      }
    },
  };
}
