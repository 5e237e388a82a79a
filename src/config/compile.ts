/**
 * Config → VendorPlugin. A declarative file is not a second implementation of
 * a vendor driver: it compiles to an ordinary plugin whose init registers each
 * parent through MdevHost.registerDevice with ParentOps built from the
 * capacity pieces of capacity.ts, exactly as a hand-written plugin would.
 */
import { MdevError } from '../core/api.js';
import type {
  DeviceApi,
  MdevDevice,
  MdevHost,
  MdevType,
  MdevTypeSpec,
  Parent,
  ParentDeviceSpec,
  ParentOps,
  PciDevice,
  Profile,
  VendorPlugin,
} from '../core/api.js';
import { oneTypeAtATime, ParentCapacity, perTypeMax, sharedCount, sharedPool, type CapacityRule } from './capacity.js';
import { assertValidConfig } from './validate.js';
import { pciConfigOf } from './pci-config.js';
import { compilePciFunction, type SharedCapacity } from './compile-pci.js';
import { attrDefs, buildAttrs, buildGroups, render, type AttrDef } from './attr-defs.js';
import { DEFAULT_CONFLICT_ERRNO, DEFAULT_EXHAUSTED_ERRNO, type ConfigDoc, type ParentConfig, type TypeConfig } from './types.js';

export interface CompileOptions {
  /** The plugin's name; overrides doc.name. Default doc.name, else 'config'. */
  name?: string;
}

/** The `registerDevice` arguments for one configured parent (fresh state on every call). */
export function compileParent(
  p: ParentConfig,
  profile: Profile = 'modern',
  shared: SharedCapacity = {},
): { device: ParentDeviceSpec; ops: ParentOps } {
  const name = p.path.slice(p.path.lastIndexOf('/') + 1);
  const parentVars = { parent: name, path: p.path, prefix: p.typePrefix };
  const parentDeviceApi: DeviceApi = p.deviceApi ?? 'vfio-pci';
  const typeCfg = new Map<string, TypeConfig>(p.types.map(t => [t.id, t]));
  const cfgOf = (t: MdevType): TypeConfig | undefined => typeCfg.get(t.spec.id);

  // Capacity.
  const cap = p.capacity;
  let capacity: ParentCapacity<MdevType> | undefined;
  let maxInstances: number | undefined;
  if (shared.capacity) {
    capacity = shared.capacity;
  } else if (cap.model === 'counter') {
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
        if (!had && cap1 && devices.size >= cap1.max) throw new MdevError(cap1.errno, `${name} holds ${cap1.max} devices already`);
        capacity?.claim(dev);
      } catch (e) {
        if (!had) devices.delete(dev.uuid);
        throw e;
      }
      deviceState(dev);
      if (!had) shared.onCount?.(1);
    },
    remove(dev) {
      capacity?.release(dev);
      if (devices.delete(dev.uuid)) shared.onCount?.(-1);
    },
  };
  const cap1 = shared.perParent;
  if (capacity) {
    const c = capacity;
    ops.getAvailable = t => (cap1 ? Math.min(c.available(t), Math.max(0, cap1.max - devices.size)) : c.available(t));
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
  const pciAdded = new WeakMap<MdevHost, PciDevice[]>();
  return {
    name: opts.name ?? cfg.name ?? 'config',
    async init(mdev) {
      const mine: Parent[] = [];
      registered.set(mdev, mine);
      const pci: PciDevice[] = [];
      pciAdded.set(mdev, pci);
      try {
        for (const p of cfg.parents) {
          const { device, ops } = compileParent(p, mdev.profile);
          mine.push(await mdev.registerDevice(device, ops));
        }
        for (const f of cfg.pciFunctions ?? []) pci.push(await mdev.addPciDevice(compilePciFunction(f, mdev, mdev.profile, compileParent)));
      } catch (e) {
        for (const d of pci.splice(0).reverse()) await mdev.removePciDevice(d).catch(() => {});
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
      for (const d of (pciAdded.get(mdev) ?? []).reverse()) await mdev.removePciDevice(d).catch(() => {});
      pciAdded.delete(mdev);
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
