// `mdevfs mount --overlay <base>` over a hand-made base (docs/overlay.md):
// merged directories, the tree's names winning, opaque objects, hidden
// framework directories, live base reads, numbers the base already uses left
// alone, disjoint inode numbers, EROFS for every change, and a mount point
// inside the base refused.
import t, { type Test } from 'tap';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { startDaemon, mdevfsMount, makeMountDir, spawnChild, FIXTURES } from '../helpers/daemon.js';
import { sys, writeOnce, readOnce, one } from '../helpers/sys.js';
import { scratchDir } from '../helpers/util.js';
import { P, TA } from '../fixtures/test-plugin.js';

const PLUGIN = `${FIXTURES}/test-plugin.ts`;
const U1 = '83b8f4f2-509f-382f-3c1e-e6bfe0fa1001';

/** A small /sys-like base; every entry says where it came from. */
async function makeBase(t: Test): Promise<string> {
  const base = await scratchDir(t, 'mdevfs-base-');
  const file = async (rel: string, text: string) => {
    await fsp.mkdir(path.dirname(path.join(base, rel)), { recursive: true });
    await fsp.writeFile(path.join(base, rel), text);
  };
  const link = async (rel: string, target: string) => {
    await fsp.mkdir(path.dirname(path.join(base, rel)), { recursive: true });
    await fsp.symlink(target, path.join(base, rel));
  };
  await file('devices/system/cpu/online', '0-3\n');
  await file(`${P}/base_only`, 'hidden by the emulated device\n'); // inside an emulated object
  await file('devices/virtual/mtest/other', 'beside the emulated device\n'); // in a merged container
  await file('devices/hostparent/mdev_supported_types/t/name', 'host\n');
  await link('class/mdev_bus/hostparent', '../../devices/hostparent');
  await link('bus/mdev/devices/hostmdev', '../../../devices/hostparent');
  await link('class/net/lo', '../../devices/virtual/net/lo');
  await file('devices/virtual/net/lo/mtu', '65536\n');
  for (const g of ['0', '1', '2']) await fsp.mkdir(path.join(base, 'kernel/iommu_groups', g, 'devices'), { recursive: true });
  await file('class/vfio/0/dev', '241:0\n');
  await fsp.mkdir(path.join(base, 'class/vfio-dev/vfio0'), { recursive: true });
  return base;
}

t.test('merged, shadowed, opaque and hidden entries; live reads; host numbers left alone', async t => {
  const base = await makeBase(t);
  const d = await startDaemon(t, { command: mdevfsMount('--driver', PLUGIN, '--overlay', base) });
  const p = d.p;

  t.equal(await readOnce(p('devices/system/cpu/online')), '0-3\n', 'a base file reads through');
  t.same((await fsp.readdir(p(''))).sort(), ['bus', 'class', 'devices', 'kernel'], 'the top level, merged');
  t.same((await fsp.readdir(p('class'))).sort(), ['mdev_bus', 'mtest', 'net', 'vfio', 'vfio-dev']);
  t.equal(await one(['readlink', p('class/net/lo')]), '../../devices/virtual/net/lo');
  t.equal(await readOnce(p('class/net/lo/mtu')), '65536\n', 'a base link resolves in the merged tree');
  const parents = await fsp.readdir(p('class/mdev_bus'));
  t.ok(parents.includes('mtest') && !parents.includes('hostparent'), "the base's mdev parents do not show");
  t.same(await sys([['lstat', p('bus/mdev/devices/hostmdev')]]), [{ errno: 'ENOENT' }], "nor the base's mdev bus");
  t.same(await sys([['lstat', p(`${P}/base_only`)]]), [{ errno: 'ENOENT' }], 'an emulated device is opaque');
  t.equal(await readOnce(p('devices/virtual/mtest/other')), 'beside the emulated device\n', 'its container merges');
  t.ok((await fsp.readdir(p('devices/virtual/mtest'))).includes('other'));

  // Live: the base changes after the mount.
  await fsp.writeFile(path.join(base, 'devices/system/cpu/online'), '0-7\n');
  await fsp.writeFile(path.join(base, 'devices/system/cpu/later'), 'new\n');
  t.equal(await readOnce(p('devices/system/cpu/online')), '0-7\n', 'reads what the base holds now');
  t.same((await fsp.readdir(p('devices/system/cpu'))).sort(), ['later', 'online'], 'lists what the base holds now');

  // A device: its group, VFIO group minor and vfio<k> skip the base's.
  t.equal(await writeOnce(p(`${TA}/create`), `${U1}\n`), 37);
  t.equal(await one(['readlink', p(`bus/mdev/devices/${U1}/iommu_group`)]), '../../../../../kernel/iommu_groups/3');
  t.same((await fsp.readdir(p('kernel/iommu_groups'))).sort(), ['0', '1', '2', '3']);
  t.match(await readOnce(p('class/vfio/3/dev')), /^\d+:1\n$/, "VFIO group minor 1: the base's 0 is taken");
  t.same(await fsp.readdir(p(`${P}/${U1}/vfio-dev`)), ['vfio1']);
  t.same((await fsp.readdir(p('class/vfio'))).sort(), ['0', '3'], "the base's group 0 and the emulated 3");

  // Inode numbers: the tree's below 2^31, the base's above.
  const [emulated, fromBase] = await Promise.all([fsp.stat(p(`${TA}/create`)), fsp.stat(p('devices/system/cpu/online'))]);
  t.ok(emulated.ino < 2 ** 31 && fromBase.ino >= 2 ** 31, `disjoint inode numbers (${emulated.ino}, ${fromBase.ino})`);
  // st_nlink: 1 ("unknown") where the base may add subdirectories; counted in an opaque object.
  t.equal((await fsp.stat(p('class'))).nlink, 1, 'a merged directory');
  t.equal((await fsp.stat(p(P))).nlink, 2 + (await fsp.readdir(p(P), { withFileTypes: true })).filter(e => e.isDirectory()).length);

  // Every change to the base is EROFS and reaches nothing; the tree's own errnos stay.
  const cpu = p('devices/system/cpu');
  t.same(
    await sys([
      ['open', `${cpu}/online`, 'O_WRONLY'],
      ['open', `${cpu}/online`, 'O_RDONLY|O_TRUNC'],
      ['truncate', `${cpu}/online`, 0],
      ['chmod', `${cpu}/online`, 0o600],
      ['mkdir', `${cpu}/new`],
      ['mknod', `${cpu}/new`],
      ['unlink', `${cpu}/online`],
      ['rmdir', cpu],
      ['rename', `${cpu}/online`, `${cpu}/moved`],
      ['symlink', 'x', `${cpu}/l`],
      ['access', `${cpu}/online`, 'W_OK'], // os.access says False where access(2) fails
      ['access', p(`${TA}/create`), 'W_OK'],
      ['mkdir', p('class/mdev_bus/x')],
    ]),
    [
      { errno: 'EROFS' },
      { errno: 'EROFS' },
      { errno: 'EROFS' },
      { errno: 'EROFS' },
      { errno: 'EROFS' },
      { errno: 'EROFS' },
      { errno: 'EROFS' },
      { errno: 'EROFS' },
      { errno: 'EROFS' },
      { errno: 'EROFS' },
      { ok: false },
      { ok: true },
      { errno: 'EPERM' },
    ],
  );
  t.equal(await fsp.readFile(path.join(base, 'devices/system/cpu/online'), 'utf8'), '0-7\n', 'the base is unchanged');
  t.same((await fsp.readdir(path.join(base, 'devices/system/cpu'))).sort(), ['later', 'online']);
});

t.test('a mount point inside the base is refused', async t => {
  const base = await makeBase(t);
  const dir = path.join(base, 'mnt');
  await fsp.mkdir(dir);
  const c = spawnChild(t, mdevfsMount('--overlay', base)(dir));
  const e = await c.exited;
  t.equal(e.code, 1);
  t.match(c.err(), new RegExp(`--overlay ${base} holds the mount point ${dir}`));
});

t.test('a --vfio-dir inside the base is refused (this daemon serves it too)', async t => {
  const base = await makeBase(t);
  const vfio = path.join(base, 'vfio');
  await fsp.mkdir(vfio);
  const c = spawnChild(t, mdevfsMount('--overlay', base, '--vfio-dir', vfio)(await makeMountDir(t)));
  const e = await c.exited;
  t.equal(e.code, 1);
  t.match(c.err(), new RegExp(`--overlay ${base} holds the mount point ${vfio}`));
});

t.test('without --overlay a mount is the bare tree', async t => {
  const d = await startDaemon(t, { dir: await makeMountDir(t), command: mdevfsMount('--driver', PLUGIN) });
  t.same(await sys([['lstat', d.p('devices/system')]]), [{ errno: 'ENOENT' }]);
});
