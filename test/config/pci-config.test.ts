// The `config` file of config-described PCI parents, in memory: generated
// from the identity attrs (and pciConfig.link), or the exact bytes of
// pciConfig.hex; and `capture` recording a PCI parent's config space. The
// bytes are parsed here on their own (include/uapi/linux/pci_regs.h offsets).
import t from 'tap';
import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { captureSysfs, compileConfig, validateConfig } from '../../src/config/index.js';
import type { ConfigDoc } from '../../src/config/types.js';
import { MdevCore } from '../../src/core/core.js';
import { SysfsPresenter } from '../../src/sysfs/presenter.js';
import { KBinAttr, openBin, O_RDONLY, type KDir } from '../../src/kernfs/index.js';
import { fixture } from './helpers.js';

const T4 = '/devices/pci0000:3a/0000:3a:00.0/0000:3b:00.0';

async function treeOf(doc: unknown): Promise<{ root: KDir; core: MdevCore }> {
  const core = new MdevCore();
  const pr = new SysfsPresenter(core).attach();
  await core.loadPlugin(compileConfig(doc));
  return { root: pr.root, core };
}

async function configOf(root: KDir, parentPath: string): Promise<Buffer | undefined> {
  const n = root.lookup(`${parentPath}/config`);
  if (n === undefined) return undefined;
  if (!(n instanceof KBinAttr)) throw new Error('config is not a binary attribute');
  const h = openBin(n, O_RDONLY);
  const parts: Buffer[] = [];
  for (let off = 0; ;) {
    const b = await h.read(off, 4096);
    if (!b.length) break;
    parts.push(b);
    off += b.length;
  }
  return Buffer.concat(parts);
}

/** The capability ids in list order, and where the PCI Express one is. */
function caps(cfg: Buffer): { ids: number[]; exp?: number } {
  const ids: number[] = [];
  let exp: number | undefined;
  if (!(cfg.readUInt16LE(6) & 0x10)) return { ids };
  for (let pos = cfg[0x34]! & 0xfc, hops = 0; pos >= 0x40 && hops < 48; pos = cfg[pos + 1]! & 0xfc, hops++) {
    ids.push(cfg[pos]!);
    if (cfg[pos] === 0x10) exp = pos;
  }
  return { ids, exp };
}

t.test('a config PCI parent with pciConfig.link: identity from attrs, PCIe gen3 x16', async t => {
  const doc = await fixture('t4-host.json');
  const { root, core } = await treeOf(doc);
  const cfg = (await configOf(root, T4))!;
  t.equal(cfg.length, 256);
  t.equal((root.lookup(`${T4}/config`) as KBinAttr).size, 256, 'st_size 256');
  t.equal(cfg.readUInt16LE(0), 0x10de, 'vendor from attrs.vendor');
  t.equal(cfg.readUInt16LE(2), 0x1eb8, 'device');
  t.equal(cfg.readUIntLE(9, 3), 0x030200, 'class');
  t.equal(cfg[8], 0xa1, 'revision');
  t.equal(cfg.readUInt16LE(0x2c), 0x10de, 'subsystem vendor');
  t.equal(cfg.readUInt16LE(0x2e), 0x12a2, 'subsystem device');
  const c = caps(cfg);
  t.same(c.ids, [0x01, 0x05, 0x10]);
  t.equal((cfg.readUInt16LE(c.exp! + 2) >> 4) & 0xf, 0, 'endpoint');
  const lnkcap = cfg.readUInt32LE(c.exp! + 0x0c);
  t.same([lnkcap & 0xf, (lnkcap >> 4) & 0x3f], [3, 16], 'LNKCAP 8 GT/s x16');
  const lnksta = cfg.readUInt16LE(c.exp! + 0x12);
  t.same([lnksta & 0xf, (lnksta >> 4) & 0x3f], [3, 16], 'LNKSTA 8 GT/s x16');
  await core.shutdown();
});

t.test('a PCI parent without pciConfig gets one with no link; a class parent none', async t => {
  const gvtg = JSON.parse(
    await readFile(fileURLToPath(new URL('../../examples/config/gvtg-host.json', import.meta.url)), 'utf8'),
  ) as ConfigDoc;
  t.equal(gvtg.parents[0]!.pciConfig, undefined);
  const { root, core } = await treeOf(gvtg);
  const cfg = (await configOf(root, `/${gvtg.parents[0]!.path}`))!;
  t.equal(cfg.length, 256);
  t.equal(cfg.readUInt16LE(0), 0x8086);
  const c = caps(cfg);
  t.equal((cfg.readUInt16LE(c.exp! + 2) >> 4) & 0xf, 9, 'Root Complex Integrated Endpoint');
  t.equal(cfg.readUInt32LE(c.exp! + 0x0c), 0, 'no link capability');
  await core.shutdown();

  const mtty = await fixture('mtty-fixed.json');
  const m = await treeOf(mtty);
  t.equal(await configOf(m.root, '/devices/virtual/mtty/mtty'), undefined, 'not a PCI device');
  await m.core.shutdown();
});

t.test('pciConfig.hex: the exact bytes, 256 or 4096 of them', async t => {
  for (const size of [256, 4096]) {
    const bytes = Buffer.from(Array.from({ length: size }, (_, i) => (i * 37 + 11) & 0xff));
    const doc = await fixture('t4-host.json');
    doc.parents[0]!.pciConfig = { hex: bytes.toString('hex') };
    t.same(validateConfig(doc), []);
    const { root, core } = await treeOf(doc);
    t.equal((root.lookup(`${T4}/config`) as KBinAttr).size, size);
    t.same(await configOf(root, T4), bytes, `${size} bytes back unchanged`);
    await core.shutdown();
  }
});

t.test('capture records a PCI parent whole config space as hex', async t => {
  const tmp = await mkdtemp(join(tmpdir(), 'mdevfs-pcicfg-'));
  t.teardown(() => rm(tmp, { recursive: true, force: true }));
  const file = async (root: string, p: string, content: string | Buffer, mode = 0o444) => {
    await mkdir(dirname(join(root, p)), { recursive: true });
    await writeFile(join(root, p), content);
    await chmod(join(root, p), mode);
  };
  const link = async (root: string, p: string, target: string) => {
    await mkdir(dirname(join(root, p)), { recursive: true });
    await symlink(target, join(root, p));
  };
  const P = 'devices/pci0000:00/0000:00:05.0';
  const host = async (name: string, config: Buffer): Promise<string> => {
    const root = join(tmp, name);
    await link(root, 'class/mdev_bus/0000:00:05.0', `../../${P}`);
    await link(root, `${P}/subsystem`, '../../../bus/pci');
    await file(root, `${P}/vendor`, '0x1234\n');
    await file(root, `${P}/config`, config, 0o644);
    await file(root, `${P}/mdev_supported_types/acme-1/device_api`, 'vfio-pci\n');
    await file(root, `${P}/mdev_supported_types/acme-1/available_instances`, '2\n');
    await mkdir(join(root, P, 'mdev_supported_types/acme-1/devices'));
    return root;
  };
  const space = Buffer.from(Array.from({ length: 256 }, (_, i) => i ^ 0x5a));
  const doc = await captureSysfs(await host('full', space));
  t.same(doc.parents[0]!.pciConfig, { hex: space.toString('hex') });
  t.equal(doc.parents[0]!.attrs?.config, undefined, 'not also a text file');
  const { root, core } = await treeOf(doc);
  t.same(await configOf(root, `/${P}`), space, 'the capture mounts back with the same bytes');
  await core.shutdown();

  // What a non-root reader gets from the kernel: the first 64 bytes only.
  const short = await captureSysfs(await host('short', space.subarray(0, 64)));
  t.equal(short.parents[0]!.pciConfig, undefined, 'a partial config space is not recorded');
});
