/**
 * `mdevfs capture` of SR-IOV mdev hosts (NVIDIA Ampere): parents that are VFs
 * (they have a `physfn` link) are captured as their PF's `pciFunctions` entry
 * instead of one parent each:
 *   path, driver, iommuGroup, attrs, pciConfig   the PF's, as a parent's
 *   sriov.totalVfs/offset/stride/vfDevice/numVfs  its sriov_* files
 *   sriov.vf.driver, iommuGroupBase               VF 0's driver and group (VF i gets base + i)
 *   sriov.vf.attrs, pciConfig                     VF 0's files, its address as {address}, the PF's as {pf}
 *   sriov.vf.mdev                                 VF 0's parent (types, device files); capacity
 *                                                 "fixed" with max = the sum over the VFs of
 *                                                 available + existing, perVf the most one VF
 *                                                 offers: a capture cannot see the GPU's real
 *                                                 limits (edit them if you know them)
 */
import { readFile, readdir, readlink, realpath } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { escapeTemplate } from './template.js';
import { RESERVED_ATTRS, SRIOV_FILES, type AttrMap, type AttrValue, type ParentConfig, type PciFunctionConfig } from './types.js';

/** What capture.ts lends: a function's files as it captures a parent's. */
export interface FunctionFiles {
  /** Identity files of `dir` (not `skip`), as attribute values. */
  attrs(dir: string, skip: readonly string[]): Promise<AttrMap>;
  /** `config` as hex, if whole. */
  pciConfig(file: string): Promise<string | undefined>;
}

const linkBase = async (p: string): Promise<string | undefined> => {
  try {
    return (await readlink(p)).replace(/\/+$/, '').split('/').pop();
  } catch {
    return undefined;
  }
};
const readNumber = async (p: string, radix: number): Promise<number | undefined> => {
  try {
    const n = parseInt((await readFile(p, 'utf8')).trim().replace(/^0x/i, ''), radix);
    return Number.isFinite(n) ? n : undefined;
  } catch {
    return undefined;
  }
};
const group = async (dir: string): Promise<number | undefined> => {
  const g = await linkBase(join(dir, 'iommu_group'));
  return g !== undefined && /^\d+$/.test(g) ? parseInt(g, 10) : undefined;
};

/** Replace an address in every attribute value by a placeholder. */
function templated(attrs: AttrMap, names: ReadonlyArray<[string, string]>): AttrMap {
  const sub = (s: string): string => names.reduce((acc, [addr, ph]) => acc.split(escapeTemplate(addr)).join(`{${ph}}`), s);
  const out: AttrMap = {};
  for (const [k, v] of Object.entries(attrs)) {
    out[k] = typeof v === 'string' ? sub(v) : ({ ...v, ...(v.value !== undefined ? { value: sub(v.value) } : {}) } as AttrValue);
  }
  return out;
}

/** The VF parents among `parents` (by name), grouped under their PF's path below `root`. */
export async function vfParents(root: string, parents: readonly ParentConfig[]): Promise<Map<string, ParentConfig[]>> {
  const byPf = new Map<string, ParentConfig[]>();
  const absRoot = await realpath(root);
  for (const p of parents) {
    let pf: string;
    try {
      pf = relative(absRoot, await realpath(join(root, p.path, 'physfn')))
        .split(sep)
        .join('/');
    } catch {
      continue;
    }
    if (!pf.startsWith('devices/')) continue;
    byPf.set(pf, [...(byPf.get(pf) ?? []), p]);
  }
  return byPf;
}

/** One PF and its VF parents as a pciFunctions entry. */
export async function capturePf(
  root: string,
  pfPath: string,
  vfs: readonly ParentConfig[],
  files: FunctionFiles,
): Promise<PciFunctionConfig> {
  const dir = join(root, pfPath);
  const address = pfPath.slice(pfPath.lastIndexOf('/') + 1);
  const entries = await readdir(dir);
  const virtfns = entries.filter(e => /^virtfn\d+$/.test(e)).sort((a, b) => parseInt(a.slice(6), 10) - parseInt(b.slice(6), 10));
  const vf0Name = virtfns.length ? await linkBase(join(dir, virtfns[0]!)) : undefined;
  const vf0 = vfs.find(v => v.path.endsWith(`/${vf0Name}`)) ?? vfs[0]!;
  const vf0Dir = join(root, vf0.path);
  const vf0Address = vf0.path.slice(vf0.path.lastIndexOf('/') + 1);

  const skip = [...RESERVED_ATTRS.pci, ...SRIOV_FILES, ...virtfns, 'physfn'];
  const f: PciFunctionConfig = { path: pfPath, sriov: undefined as never };
  const driver = await linkBase(join(dir, 'driver'));
  if (driver) f.driver = driver;
  const g = await group(dir);
  if (g !== undefined) f.iommuGroup = g;
  const attrs = templated(await files.attrs(dir, skip), [[address, 'address']]);
  if (Object.keys(attrs).length) f.attrs = attrs;
  const hex = await files.pciConfig(join(dir, 'config'));
  if (hex) f.pciConfig = { hex };

  const vfAttrs = templated(await files.attrs(vf0Dir, [...skip, 'mdev_supported_types']), [
    [vf0Address, 'address'],
    [address, 'pf'],
  ]);
  const vfHex = await files.pciConfig(join(vf0Dir, 'config'));
  const vfDriver = await linkBase(join(vf0Dir, 'driver'));
  const vfGroup = await group(vf0Dir);
  let vfIndex = 0;
  for (const [i, v] of virtfns.entries()) if ((await linkBase(join(dir, v))) === vf0Address) vfIndex = i;
  // The types' limits: what every VF offers now, added up; a VF's own cap is the most one offers.
  const fixedMax = (id: string): number => vfs.reduce((n, v) => n + (v.types.find(t => t.id === id)?.max ?? 0), 0);
  const perVf = Math.max(1, ...vfs.flatMap(v => v.types.map(t => t.max ?? 0)));
  f.sriov = {
    totalVfs: (await readNumber(join(dir, 'sriov_totalvfs'), 10)) ?? virtfns.length,
    offset: (await readNumber(join(dir, 'sriov_offset'), 10)) ?? 1,
    stride: (await readNumber(join(dir, 'sriov_stride'), 10)) ?? 1,
    vfDevice: (await readNumber(join(dir, 'sriov_vf_device'), 16)) ?? 0,
    numVfs: (await readNumber(join(dir, 'sriov_numvfs'), 10)) ?? virtfns.length,
    vf: {
      ...(vfDriver ? { driver: vfDriver } : {}),
      ...(vfGroup !== undefined ? { iommuGroupBase: Math.max(0, vfGroup - vfIndex) } : {}),
      ...(Object.keys(vfAttrs).length ? { attrs: vfAttrs } : {}),
      ...(vfHex ? { pciConfig: { hex: vfHex } } : {}),
      mdev: {
        typePrefix: vf0.typePrefix,
        driver: vf0.driver,
        ...(vf0.deviceApi ? { deviceApi: vf0.deviceApi } : {}),
        capacity: { model: 'fixed' },
        perVf,
        types: vf0.types.map(t => ({ ...t, max: fixedMax(t.id) })),
        ...(vf0.deviceAttrs ? { deviceAttrs: vf0.deviceAttrs } : {}),
      },
    },
  };
  return f;
}
