/**
 * Config → the PCI functions of a plugin: each `pciFunctions` entry becomes a
 * PciDeviceSpec for MdevHost.addPciDevice, whose VFs are described by
 * `sriov.vf` and, with `sriov.vf.mdev`, become mdev parents in their probe,
 * as examples/nvidia-ampere.ts does by hand. The VFs of one PF share its
 * "fixed" or "pool" capacity (the GPU's), each capped at `perVf`.
 */
import {
  MdevError,
  type ErrnoName,
  type MdevHost,
  type MdevType,
  type ParentOps,
  type PciDevice,
  type PciDeviceSpec,
  type Profile,
  type VfSpec,
} from '../core/api.js';
import { oneTypeAtATime, ParentCapacity, perTypeMax, sharedPool, type CapacityRule } from './capacity.js';
import { attrDefs, buildGroups, render, type AttrDef } from './attr-defs.js';
import { pciConfigOf } from './pci-config.js';
import { DEFAULT_CONFLICT_ERRNO, DEFAULT_EXHAUSTED_ERRNO, type ParentConfig, type PciFunctionConfig, type VfMdevConfig } from './types.js';

/**
 * Capacity a parent shares with others (the VFs of one GPU: compile-pci.ts),
 * and a cap on the parent's own devices.
 */
export interface SharedCapacity {
  capacity?: ParentCapacity<MdevType>;
  perParent?: { max: number; errno: ErrnoName };
  /** Told of every device the parent gains (+1) or loses (-1). */
  onCount?(delta: 1 | -1): void;
}

/** compile.ts's compileParent (passed in: compile.ts calls this file). */
type CompileParent = (p: ParentConfig, profile: Profile, shared: SharedCapacity) => { ops: ParentOps };

/** Identity files with their values rendered once from `vars`, and the generated `config`. */
function identity(cfg: Pick<PciFunctionConfig, 'attrs' | 'pciConfig'>, vars: Record<string, string>): NonNullable<PciDeviceSpec['attrs']> {
  const defs = attrDefs(cfg.attrs);
  const values: Map<AttrDef, string> = render(defs, vars);
  const groups = buildGroups<PciDevice>(defs, () => values);
  // pciConfigOf reads a parent's identity attrs; a PCI function is on the pci bus.
  const asParent = { attrs: cfg.attrs, pciConfig: cfg.pciConfig, subsystem: { bus: 'pci' } } as ParentConfig;
  const config = pciConfigOf(asParent, vars);
  if (config) groups.push({ attrs: [], binAttrs: [config as never] });
  return groups;
}

/** The GPU-wide capacity the VFs of one PF share ("counter": none, each VF has the core's). */
function sharedCapacity(m: VfMdevConfig): ParentCapacity<MdevType> | undefined {
  const cap = m.capacity;
  if (cap.model === 'counter') return undefined;
  const max = new Map(m.types.map(t => [t.id, t]));
  const rules: CapacityRule<MdevType>[] = [];
  if (cap.oneTypeAtATime) rules.push(oneTypeAtATime(cap.conflictErrno ?? DEFAULT_CONFLICT_ERRNO));
  const errno = cap.exhaustedErrno ?? DEFAULT_EXHAUSTED_ERRNO;
  if (cap.model === 'fixed') rules.push(perTypeMax(t => max.get(t.spec.id)?.max ?? 0, errno));
  else rules.push(sharedPool(cap.size, t => max.get(t.spec.id)?.cost ?? 1, { max: t => max.get(t.spec.id)?.max, errno }));
  return new ParentCapacity(rules);
}

export function compilePciFunction(f: PciFunctionConfig, host: MdevHost, profile: Profile, compile: CompileParent): PciDeviceSpec {
  const address = f.path.slice(f.path.lastIndexOf('/') + 1);
  const s = f.sriov;
  const m = s.vf.mdev;
  const capacity = m ? sharedCapacity(m) : undefined;
  let vgpus = 0;
  const spec: PciDeviceSpec = { path: f.path, attrs: identity(f, { address }) };
  if (f.driver !== undefined) spec.driver = f.driver;
  if (f.iommuGroup !== undefined) spec.iommuGroup = f.iommuGroup;
  spec.sriov = {
    totalVfs: s.totalVfs,
    offset: s.offset,
    stride: s.stride,
    vfDevice: s.vfDevice,
    numVfs: s.numVfs ?? 0,
    configure(pf, n) {
      if (n === 0 && vgpus > 0 && s.refuseDisableErrno) {
        throw new MdevError(s.refuseDisableErrno, `${pf.name}: ${vgpus} mediated devices exist on its VFs`);
      }
    },
    vf(_pf, index, vfAddress) {
      const vf: VfSpec = { attrs: identity(s.vf, { address: vfAddress, pf: address, index: String(index) }) };
      if (s.vf.iommuGroupBase !== undefined) vf.iommuGroup = s.vf.iommuGroupBase + index;
      if (s.vf.driver === undefined) return vf;
      vf.driver = s.vf.driver;
      if (!m) return vf;
      vf.probe = async dev => {
        const parent: ParentConfig = { ...m, path: dev.device.path };
        const { ops } = compile(parent, profile, {
          capacity,
          perParent: m.perVf === undefined ? undefined : { max: m.perVf, errno: m.perVfErrno ?? 'ENOSPC' },
          onCount: d => void (vgpus += d),
        });
        await host.registerDevice({ path: dev.device.path, typePrefix: m.typePrefix }, ops);
      };
      vf.remove = dev => host.unregisterDevice(dev.name);
      return vf;
    },
  };
  return spec;
}
