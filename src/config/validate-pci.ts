/**
 * validateConfig's rules for `pciFunctions` (PCI functions with SR-IOV,
 * types.ts PciFunctionConfig); the schema says the same. validate.ts passes
 * in its checker and the checks of a parent's parts, which the VFs' `mdev`
 * reuses.
 */
import { joinPath } from './json.js';
import { checkPciConfig, type ConfigChecker } from './pci-config.js';
import { CAPACITY_ERRNOS, DEVICE_APIS, NAME_PATTERN, PCI_PATH_PATTERN, type AttrScope, type CapacityModel } from './types.js';

type Obj = Record<string, unknown>;
const has = (o: Obj, k: string): boolean => Object.prototype.hasOwnProperty.call(o, k);

/** What validate.ts lends: its checker and the checks of attributes, capacity and types. */
export interface PciChecks {
  c: ConfigChecker & {
    integer(path: string, v: unknown, min: number, why?: string): v is number;
    oneOf<T extends string>(path: string, v: unknown, allowed: readonly T[]): v is T;
  };
  attrs(path: string, v: unknown, scope: AttrScope): void;
  capacity(path: string, v: unknown): CapacityModel | undefined;
  type(path: string, v: unknown, model: CapacityModel | undefined): string | undefined;
}

const NAME_RE = new RegExp(NAME_PATTERN);
const PCI_PATH_RE = new RegExp(PCI_PATH_PATTERN);
const NAME_WHAT = 'letters, digits and _.:+,@!~- (not starting with one of the last ten), no "/"';
const U16 = 0xffff;

function u16(k: PciChecks, path: string, v: unknown, min: number): boolean {
  if (!k.c.integer(path, v, min)) return false;
  if ((v as number) > U16) {
    k.c.add(path, `must be at most ${U16} (a 16-bit field of the SR-IOV capability)`);
    return false;
  }
  return true;
}

function checkMdev(k: PciChecks, path: string, v: unknown): void {
  const { c } = k;
  if (!c.object(path, v)) return;
  c.keys(path, v, ['typePrefix', 'driver', 'deviceApi', 'capacity', 'types', 'deviceAttrs', 'perVf', 'perVfErrno']);
  c.required(path, v, ['typePrefix', 'driver', 'capacity', 'types']);
  for (const key of ['typePrefix', 'driver']) if (has(v, key)) c.string(joinPath(path, key), v[key], { pattern: NAME_RE, what: NAME_WHAT });
  if (has(v, 'deviceApi')) c.oneOf(joinPath(path, 'deviceApi'), v.deviceApi, DEVICE_APIS);
  const model = has(v, 'capacity') ? k.capacity(joinPath(path, 'capacity'), v.capacity) : undefined;
  if (has(v, 'types')) {
    const tp = joinPath(path, 'types');
    if (!Array.isArray(v.types) || v.types.length === 0) c.add(tp, 'must list at least one type');
    else {
      const ids = new Set<string>();
      v.types.forEach((t, i) => {
        const id = k.type(joinPath(tp, i), t, model);
        if (id !== undefined && ids.has(id)) c.add(joinPath(joinPath(tp, i), 'id'), `duplicate type id ${JSON.stringify(id)}`);
        if (id !== undefined) ids.add(id);
      });
    }
  }
  if (has(v, 'deviceAttrs')) k.attrs(joinPath(path, 'deviceAttrs'), v.deviceAttrs, 'device');
  if (has(v, 'perVf')) c.integer(joinPath(path, 'perVf'), v.perVf, 1);
  if (has(v, 'perVfErrno')) c.oneOf(joinPath(path, 'perVfErrno'), v.perVfErrno, CAPACITY_ERRNOS);
}

function checkVf(k: PciChecks, path: string, v: unknown): void {
  const { c } = k;
  if (!c.object(path, v)) return;
  c.keys(path, v, ['driver', 'iommuGroupBase', 'attrs', 'pciConfig', 'mdev']);
  if (has(v, 'driver')) c.string(joinPath(path, 'driver'), v.driver, { pattern: NAME_RE, what: NAME_WHAT });
  if (has(v, 'iommuGroupBase')) c.integer(joinPath(path, 'iommuGroupBase'), v.iommuGroupBase, 0);
  if (has(v, 'attrs')) k.attrs(joinPath(path, 'attrs'), v.attrs, 'vf');
  if (has(v, 'pciConfig')) checkPciConfig(c, joinPath(path, 'pciConfig'), { ...v, subsystem: { bus: 'pci' } }, true);
  if (has(v, 'mdev')) {
    checkMdev(k, joinPath(path, 'mdev'), v.mdev);
    if (!has(v, 'driver')) c.add(joinPath(path, 'mdev'), 'needs vf.driver (the driver whose probe registers the VF)');
  }
}

function checkSriov(k: PciChecks, path: string, v: unknown): void {
  const { c } = k;
  if (!c.object(path, v)) return;
  c.keys(path, v, ['totalVfs', 'offset', 'stride', 'vfDevice', 'numVfs', 'refuseDisableErrno', 'vf']);
  c.required(path, v, ['totalVfs', 'offset', 'stride', 'vfDevice', 'vf']);
  const total = has(v, 'totalVfs') && u16(k, joinPath(path, 'totalVfs'), v.totalVfs, 1) ? (v.totalVfs as number) : undefined;
  // sriov_init: -EIO without First VF Offset, or with several VFs and no stride.
  if (has(v, 'offset')) u16(k, joinPath(path, 'offset'), v.offset, 1);
  if (has(v, 'stride')) u16(k, joinPath(path, 'stride'), v.stride, 1);
  if (has(v, 'vfDevice')) u16(k, joinPath(path, 'vfDevice'), v.vfDevice, 0);
  if (has(v, 'numVfs') && c.integer(joinPath(path, 'numVfs'), v.numVfs, 0) && total !== undefined && (v.numVfs as number) > total) {
    c.add(joinPath(path, 'numVfs'), `must be at most totalVfs (${total})`);
  }
  if (has(v, 'refuseDisableErrno')) c.oneOf(joinPath(path, 'refuseDisableErrno'), v.refuseDisableErrno, CAPACITY_ERRNOS);
  if (has(v, 'vf')) checkVf(k, joinPath(path, 'vf'), v.vf);
}

/** Checks `pciFunctions`; returns the PCI addresses it names (for the parents' uniqueness). */
export function checkPciFunctions(k: PciChecks, path: string, v: unknown): string[] {
  const { c } = k;
  const names: string[] = [];
  if (!Array.isArray(v)) {
    c.add(path, 'must be an array of PCI functions');
    return names;
  }
  if (v.length === 0) c.add(path, 'must list at least one PCI function (or leave it out)');
  v.forEach((f, i) => {
    const fp = joinPath(path, i);
    if (!c.object(fp, f)) return;
    c.keys(fp, f, ['$comment', 'path', 'driver', 'iommuGroup', 'attrs', 'pciConfig', 'sriov']);
    c.required(fp, f, ['path', 'sriov']);
    if (has(f, '$comment')) c.string(joinPath(fp, '$comment'), f.$comment);
    const what = 'a path below /sys whose basename is a PCI address, e.g. "devices/pci0000:40/0000:40:01.1/0000:41:00.0"';
    if (has(f, 'path') && c.string(joinPath(fp, 'path'), f.path, { pattern: PCI_PATH_RE, what })) {
      const name = f.path.slice(f.path.lastIndexOf('/') + 1);
      if (names.includes(name)) c.add(joinPath(fp, 'path'), `PCI function ${name} is listed twice`);
      names.push(name);
    }
    if (has(f, 'driver')) c.string(joinPath(fp, 'driver'), f.driver, { pattern: NAME_RE, what: NAME_WHAT });
    if (has(f, 'iommuGroup')) c.integer(joinPath(fp, 'iommuGroup'), f.iommuGroup, 0);
    if (has(f, 'attrs')) k.attrs(joinPath(fp, 'attrs'), f.attrs, 'pci');
    if (has(f, 'pciConfig')) checkPciConfig(c, joinPath(fp, 'pciConfig'), { ...f, subsystem: { bus: 'pci' } }, true);
    if (has(f, 'sriov')) checkSriov(k, joinPath(fp, 'sriov'), f.sriov);
  });
  return names;
}
