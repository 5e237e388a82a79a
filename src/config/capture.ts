/**
 * `mdevfs capture`: read a host's mdev tree (a real /sys, or an mdevfs mount)
 * and describe it as a config document, so the host can be emulated without
 * its hardware. Only async fs calls are used: the tree may be a FUSE mount
 * served by this very process.
 *
 * What is captured, per /sys/class/mdev_bus/<name> link:
 *   path         the link's target, relative to the root
 *   typePrefix   the bound driver's, class's or bus's name that prefixes every type dir
 *   subsystem    from the `subsystem` link (…/class/<c> or …/bus/<b>)
 *   parentDriver basename of the `driver` link
 *   iommuGroup   basename of the `iommu_group` link
 *   attrs        every text file at the top of the parent directory (vendor, device,
 *                class, numa_node, uevent, resource...; not CAPTURE_SKIP_PARENT_FILES)
 *                as fixed values; writable ones stay writable (a write replaces
 *                the value). uevent is kept read-only, and left out when it is
 *                just "DRIVER=<driver>\n" (or empty), which mdevfs shows anyway
 *   driver       the mdev bus driver: an existing device's `driver` link, else a
 *                well-known name for the prefix (nvidia → nvidia-vgpu-vfio …)
 *   types        name (omitted when it equals the id, i.e. the kernel's fallback),
 *                description (exact), device_api, extra type files
 *   capacity     model "fixed" with max = available_instances + devices/ entries:
 *                a capture cannot tell a pool or one-type-at-a-time parent from
 *                independent counts, so edit the model if you know it
 *   deviceAttrs  one existing device's vendor files, its UUID turned into {uuid};
 *                writable files stay writable
 *   pciConfig    a PCI parent's binary `config` file, all of it (256 or 4096
 *                bytes: run as root, or the kernel shows only 64), as hex
 * Parents that are SR-IOV VFs are captured with their PF (capture-pci.ts).
 */
import { lstat, readdir, readFile, readlink, realpath } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { ConfigError } from './errors.js';
import { escapeTemplate } from './template.js';
import {
  RESERVED_ATTRS,
  RESERVED_GROUPS,
  type AttrMap,
  type AttrValue,
  type ConfigDoc,
  type ParentConfig,
  type PciFunctionConfig,
  type TypeConfig,
} from './types.js';
import { validateConfig } from './validate.js';
import { capturePf, vfParents, type FunctionFiles } from './capture-pci.js';
import type { DeviceApi } from '../core/api.js';

/**
 * Parent files never captured: binary or mmap-only PCI files (config, rom,
 * vpd — whose read can hang on some devices — resourceN), action files
 * (remove, rescan, reset). Everything else at the top of the parent directory
 * that reads as text is an identity file (vendor, device, class, numa_node,
 * uevent, resource, local_cpulist, sriov_*...).
 */
export const CAPTURE_SKIP_PARENT_FILES: readonly RegExp[] = [
  /^config$/,
  /^rom$/,
  /^vpd$/,
  /^resource\d+(_wc|_resize)?$/,
  /^remove$/,
  /^rescan$/,
  /^reset$/,
];

/** mdev bus drivers of well-known vendors, by type prefix (when no device shows its `driver` link). */
const KNOWN_MDEV_DRIVERS: Record<string, string> = {
  nvidia: 'nvidia-vgpu-vfio',
  i915: 'intel_vgpu_mdev',
  vfio_ccw: 'vfio_ccw_mdev',
  vfio_ap: 'vfio_ap_mdev',
};

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const TYPE_STANDARD = new Set(['create', 'devices', 'name', 'description', 'device_api', 'available_instances']);

export interface CaptureOptions {
  /**
   * Which of the parent's files to capture: 'all' (default) every readable
   * text file at the top of its directory except CAPTURE_SKIP_PARENT_FILES,
   * or a list of names (those that exist are captured).
   */
  parentAttrs?: readonly string[] | 'all';
}

const byName = (a: string, b: string): number => a.localeCompare(b, 'en', { numeric: true });

async function tryLstat(p: string) {
  try {
    return await lstat(p);
  } catch {
    return undefined;
  }
}
async function tryReadlink(p: string): Promise<string | undefined> {
  try {
    return await readlink(p);
  } catch {
    return undefined;
  }
}
async function tryReadFile(p: string): Promise<string | undefined> {
  try {
    const st = await lstat(p);
    if (!st.isFile()) return undefined;
    return await readFile(p, 'utf8');
  } catch {
    return undefined;
  }
}
/** A sysfs attribute's text: undefined if unreadable, binary, or longer than a page. */
async function tryReadText(p: string): Promise<string | undefined> {
  try {
    const st = await lstat(p);
    if (!st.isFile() || (st.mode & 0o444) === 0) return undefined;
    const buf = await readFile(p);
    if (buf.length >= 4096 || buf.includes(0)) return undefined;
    const text = buf.toString('utf8');
    return Buffer.from(text, 'utf8').equals(buf) ? text : undefined;
  } catch {
    return undefined;
  }
}
/** A PCI function's configuration space as hex, if `config` reads as a whole one (256 or 4096 bytes). */
async function tryReadPciConfig(p: string): Promise<string | undefined> {
  try {
    const st = await lstat(p);
    if (!st.isFile() || (st.mode & 0o444) === 0) return undefined;
    const buf = await readFile(p);
    return buf.length === 256 || buf.length === 4096 ? buf.toString('hex') : undefined;
  } catch {
    return undefined;
  }
}
async function tryReaddir(p: string): Promise<string[]> {
  try {
    return (await readdir(p)).sort(byName);
  } catch {
    return [];
  }
}
const linkBase = (target: string | undefined): string | undefined =>
  target === undefined ? undefined : target.replace(/\/+$/, '').split('/').pop();
const chomp = (s: string): string => (s.endsWith('\n') ? s.slice(0, -1) : s);

/** The parent's path below root, from its class/mdev_bus link. */
async function parentPath(root: string, name: string): Promise<string> {
  const link = join(root, 'class', 'mdev_bus', name);
  const target = await tryReadlink(link);
  const candidates: string[] = [];
  if (target !== undefined) candidates.push(relative(root, resolve(dirname(link), target)));
  try {
    candidates.push(relative(await realpath(root), await realpath(link)));
  } catch {
    /* dangling */
  }
  for (const c of candidates) {
    const rel = c.split(sep).join('/');
    if (rel.startsWith('devices/') && !rel.split('/').includes('..')) return rel;
  }
  throw new ConfigError(
    'read',
    `cannot capture ${link}: it does not lead to a device below ${join(root, 'devices')}` +
      (target !== undefined ? ` (link target ${target})` : ' (not a symlink)'),
  );
}

/** One file as an attribute value, keeping writability (undefined if it cannot be read). */
async function fileAttr(file: string, uuid?: string): Promise<AttrValue | undefined> {
  const st = await tryLstat(file);
  if (!st?.isFile()) return undefined;
  const mode = st.mode & 0o777;
  const readable = (mode & 0o444) !== 0;
  const writable = (mode & 0o222) !== 0;
  let value = '';
  if (readable) {
    const raw = await tryReadText(file);
    if (raw === undefined) return undefined;
    value = escapeTemplate(raw);
    if (uuid) value = value.split(uuid).join('{uuid}');
  }
  if (!writable && mode === 0o444) return value;
  if (writable && mode === 0o644) return { value, writable: true };
  const spec: { value?: string; writable: boolean; mode: string } = { writable, mode: '0' + mode.toString(8).padStart(3, '0') };
  if (readable) spec.value = value;
  return spec;
}

/** The vendor files of a device (or type) directory: top-level files and one level of groups. */
async function vendorAttrs(
  dir: string,
  reserved: readonly string[],
  reservedGroups: readonly string[] | undefined,
  uuid?: string,
): Promise<AttrMap> {
  const out: AttrMap = {};
  for (const entry of await tryReaddir(dir)) {
    if (reserved.includes(entry)) continue;
    const p = join(dir, entry);
    const st = await tryLstat(p);
    if (!st) continue;
    if (st.isFile()) {
      const v = await fileAttr(p, uuid);
      if (v !== undefined) out[entry] = v;
    } else if (st.isDirectory() && reservedGroups && !reservedGroups.includes(entry) && !UUID_RE.test(entry)) {
      for (const sub of await tryReaddir(p)) {
        const v = await fileAttr(join(p, sub), uuid);
        if (v !== undefined) out[`${entry}/${sub}`] = v;
      }
    }
  }
  return out;
}

async function captureParent(root: string, name: string, which: readonly string[] | 'all'): Promise<ParentConfig> {
  const path = await parentPath(root, name);
  const dir = join(root, path);

  const subsystemTarget = await tryReadlink(join(dir, 'subsystem'));
  let subsystem: ParentConfig['subsystem'];
  if (subsystemTarget) {
    const parts = subsystemTarget.replace(/\/+$/, '').split('/');
    const [kind, sub] = parts.slice(-2);
    if (sub && kind === 'class') subsystem = { class: sub };
    else if (sub && kind === 'bus') subsystem = { bus: sub };
  }
  const parentDriver = linkBase(await tryReadlink(join(dir, 'driver')));
  const group = linkBase(await tryReadlink(join(dir, 'iommu_group')));

  const attrs: AttrMap = {};
  const attrNames =
    which === 'all'
      ? (await tryReaddir(dir)).filter(
          f => !CAPTURE_SKIP_PARENT_FILES.some(re => re.test(f)) && !RESERVED_ATTRS.parent.includes(f) && !UUID_RE.test(f),
        )
      : which;
  for (const a of attrNames) {
    if (a === 'uevent') {
      // Not what mdevfs would show by itself (a generic, writable uevent with
      // DRIVER=): fixed and read-only, as writing it must not change it.
      const v = await tryReadText(join(dir, a));
      if (v !== undefined && v !== (parentDriver ? `DRIVER=${parentDriver}\n` : '')) attrs[a] = escapeTemplate(v);
      continue;
    }
    const v = await fileAttr(join(dir, a));
    if (v !== undefined) attrs[a] = v;
  }

  // Types.
  const typesDir = join(dir, 'mdev_supported_types');
  const typeDirs = (await tryReaddir(typesDir)).filter(t => !t.startsWith('.'));
  if (typeDirs.length === 0) throw new ConfigError('read', `cannot capture ${dir}: no mdev_supported_types/<type> directories`);
  const prefixCandidates = [parentDriver, subsystem && ('class' in subsystem ? subsystem.class : subsystem.bus)];
  let typePrefix = prefixCandidates.find((c): c is string => !!c && typeDirs.every(t => t.startsWith(c + '-')));
  if (!typePrefix) {
    const first = typeDirs[0]!;
    const cut = first.indexOf('-');
    const guess = cut > 0 ? first.slice(0, cut) : undefined;
    if (!guess || !typeDirs.every(t => t.startsWith(guess + '-'))) {
      throw new ConfigError(
        'read',
        `cannot capture ${typesDir}: the type directories (${typeDirs.join(', ')}) do not share a "<prefix>-" prefix`,
      );
    }
    typePrefix = guess;
  }

  interface Raw {
    cfg: TypeConfig;
    api: string;
    avail: number;
    existing: number;
  }
  const raws: Raw[] = [];
  for (const t of typeDirs) {
    const tdir = join(typesDir, t);
    const id = t.slice(typePrefix.length + 1);
    const cfg: TypeConfig = { id };
    const nameFile = await tryReadFile(join(tdir, 'name'));
    if (nameFile !== undefined && chomp(nameFile) !== id) cfg.name = chomp(nameFile);
    const description = await tryReadFile(join(tdir, 'description'));
    if (description !== undefined) cfg.description = description;
    const api = await tryReadFile(join(tdir, 'device_api'));
    const availText = await tryReadFile(join(tdir, 'available_instances'));
    if (api === undefined || availText === undefined) {
      throw new ConfigError('read', `cannot capture ${tdir}: device_api and available_instances must be readable`);
    }
    if (!/^\d+\n?$/.test(availText))
      throw new ConfigError('read', `cannot capture ${join(tdir, 'available_instances')}: ${JSON.stringify(availText)} is not a number`);
    const extra = await vendorAttrs(tdir, [...TYPE_STANDARD], undefined);
    if (Object.keys(extra).length) cfg.attrs = extra;
    const existing = (await tryReaddir(join(tdir, 'devices'))).length;
    raws.push({ cfg, api: chomp(api), avail: parseInt(availText, 10), existing });
  }

  // The parent's device_api is the most common one; types that differ say so.
  const counts = new Map<string, number>();
  for (const r of raws) counts.set(r.api, (counts.get(r.api) ?? 0) + 1);
  const parentApi = [...counts].sort((a, b) => b[1] - a[1])[0]![0];
  const types: TypeConfig[] = raws.map(r => {
    const cfg: TypeConfig = { id: r.cfg.id };
    if (r.cfg.name !== undefined) cfg.name = r.cfg.name;
    if (r.cfg.description !== undefined) cfg.description = r.cfg.description;
    if (r.api !== parentApi) cfg.deviceApi = r.api as DeviceApi;
    cfg.max = r.avail + r.existing;
    if (r.cfg.attrs) cfg.attrs = r.cfg.attrs;
    return cfg;
  });

  // Existing devices: the mdev bus driver and the vendor files of one of them.
  const deviceDirs: string[] = [];
  for (const e of await tryReaddir(dir)) {
    if (UUID_RE.test(e) && (await tryLstat(join(dir, e)))?.isDirectory()) deviceDirs.push(e);
  }
  let driver: string | undefined;
  let deviceAttrs: AttrMap | undefined;
  for (const uuid of deviceDirs) {
    const d = linkBase(await tryReadlink(join(dir, uuid, 'driver')));
    if (d && d !== 'vfio_mdev') driver ??= d;
    if (!deviceAttrs) {
      const a = await vendorAttrs(join(dir, uuid), RESERVED_ATTRS.device, RESERVED_GROUPS.device, uuid.toLowerCase());
      if (Object.keys(a).length) deviceAttrs = a;
    }
  }
  driver ??= KNOWN_MDEV_DRIVERS[typePrefix] ?? typePrefix;
  const pciHex = subsystem && 'bus' in subsystem && subsystem.bus === 'pci' ? await tryReadPciConfig(join(dir, 'config')) : undefined;
  if (pciHex !== undefined) delete attrs.config;

  // Key order here is the order the JSON file shows.
  return {
    path,
    typePrefix,
    driver,
    deviceApi: parentApi as DeviceApi,
    ...(subsystem ? { subsystem } : {}),
    ...(parentDriver && subsystem && 'bus' in subsystem ? { parentDriver } : {}),
    ...(group !== undefined && /^\d+$/.test(group) ? { iommuGroup: parseInt(group, 10) } : {}),
    ...(Object.keys(attrs).length ? { attrs } : {}),
    capacity: { model: 'fixed' },
    types,
    ...(deviceAttrs ? { deviceAttrs } : {}),
    ...(pciHex !== undefined ? { pciConfig: { hex: pciHex } } : {}),
  };
}

/** A PCI function's identity files and config, captured as a parent's are. */
const FUNCTION_FILES: FunctionFiles = {
  async attrs(dir, skip) {
    const out: AttrMap = {};
    for (const a of await tryReaddir(dir)) {
      if (CAPTURE_SKIP_PARENT_FILES.some(re => re.test(a)) || skip.includes(a) || UUID_RE.test(a)) continue;
      const v = await fileAttr(join(dir, a)); // uevent too: a function's shows its variables, a write is the core's
      if (v !== undefined) out[a] = v;
    }
    return out;
  },
  pciConfig: tryReadPciConfig,
};

/**
 * `mdevfs capture [--sysfs <root>]`: describe the mdev parents under `root`
 * (default /sys) as a config document. Mounting the result reproduces the same
 * parents, types, names, descriptions, device_api and (with no devices)
 * available_instances, and the parents' identity files.
 * Throws ConfigError (kind 'read') when there is nothing to capture or the
 * tree cannot be described, and (kind 'invalid') if what it read does not make
 * a valid config (e.g. an unknown device_api).
 */
export async function captureSysfs(root = '/sys', opts: CaptureOptions = {}): Promise<ConfigDoc> {
  const absRoot = resolve(root);
  const busDir = join(absRoot, 'class', 'mdev_bus');
  const names = (await tryReaddir(busDir)).filter(n => !n.startsWith('.')).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  if (names.length === 0) {
    throw new ConfigError('read', `nothing to capture: ${busDir} has no mdev parents (is an mdev vendor driver loaded?)`);
  }
  const captured: ParentConfig[] = [];
  for (const n of names) captured.push(await captureParent(absRoot, n, opts.parentAttrs ?? 'all'));
  // Parents that are SR-IOV VFs become their PF's pciFunctions entry (capture-pci.ts).
  const byPf = await vfParents(absRoot, captured);
  const pciFunctions: PciFunctionConfig[] = [];
  for (const [pf, vfs] of byPf) pciFunctions.push(await capturePf(absRoot, pf, vfs, FUNCTION_FILES));
  const parents = captured.filter(p => ![...byPf.values()].flat().includes(p));
  const doc: ConfigDoc = { $comment: `Captured from ${root} by mdevfs capture`, version: 1, parents };
  if (pciFunctions.length) doc.pciFunctions = pciFunctions;
  const issues = validateConfig(doc);
  if (issues.length) {
    throw new ConfigError(
      'invalid',
      `the tree under ${root} does not make a valid config:\n` + issues.map(i => `  ${i.path}: ${i.message}`).join('\n'),
      issues,
    );
  }
  return doc;
}

/** The config as pretty-printed JSON (2-space indent, trailing newline), as `mdevfs capture` writes it. */
export function formatConfig(doc: ConfigDoc): string {
  return JSON.stringify(doc, null, 2) + '\n';
}
