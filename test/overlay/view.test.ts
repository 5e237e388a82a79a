// OverlayView in memory (no mount): which side answers a path, what a merged
// directory lists, and the inode halves (docs/overlay.md).
import t, { type Test } from 'tap';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { KAttr, type KDir, KernfsRoot, MAX_NODE_INO } from '../../src/kernfs/index.js';
import { scratchDir } from '../helpers/util.js';
import { BaseDir, BaseEntry, OverlayView, baseIno, readHostIds } from '../../src/overlay/index.js';

async function setup(t: Test) {
  const dir = await scratchDir(t, 'mdevfs-view-');
  for (const f of ['class/net/lo/mtu', 'class/mdev_bus/real/x', 'devices/obj/base_only', 'devices/system/online', 'shared']) {
    await fsp.mkdir(path.dirname(path.join(dir, f)), { recursive: true });
    await fsp.writeFile(path.join(dir, f), f);
  }
  for (const g of ['0', '5']) await fsp.mkdir(path.join(dir, 'kernel/iommu_groups', g), { recursive: true });
  await fsp.mkdir(path.join(dir, 'class/vfio/5'), { recursive: true });
  await fsp.writeFile(path.join(dir, 'class/vfio/5/dev'), '240:7\n');
  await fsp.mkdir(path.join(dir, 'class/vfio-dev/vfio2'), { recursive: true });
  const root = new KernfsRoot();
  const cls = root.mkdir('class');
  cls.mkdir('mdev_bus');
  const obj = root.mkdir('devices').mkdir('obj');
  obj.opaque = true;
  obj.attr('own', 0o444, { show: () => 'own\n' });
  root.attr('shared', 0o444, { show: () => 'tree\n' });
  const base = BaseDir.open(dir);
  t.teardown(() => base.close());
  return { root, base, view: new OverlayView(root, base, ['/class/mdev_bus']) };
}

t.test('resolve: the tree first, the base where the tree has nothing, never below an opaque or hidden directory', async t => {
  const { root, view } = await setup(t);
  t.equal(view.resolve('/shared'), root.get('shared'), 'the tree wins');
  t.type(view.resolve('/shared'), KAttr);
  const lo = view.resolve('/class/net/lo/mtu');
  t.type(lo, BaseEntry);
  t.equal((lo as BaseEntry).path, '/class/net/lo/mtu');
  t.equal(view.resolve('/devices/obj/base_only'), undefined, 'opaque');
  t.type(view.resolve('/devices/obj/own'), KAttr);
  t.equal(view.resolve('/class/mdev_bus/real'), undefined, 'hidden');
  t.equal(view.resolve('/class/mdev_bus/real/x'), undefined, 'hidden below too');
  t.equal(view.resolve('/nothing'), undefined);
  t.equal(view.resolve('/shared/below'), undefined, 'nothing below a file');
  t.type(view.resolve('/devices/system'), BaseEntry, 'a merged container');
  t.equal(new OverlayView(root).resolve('/class/net'), undefined, 'no base: the bare tree');
});

t.test("resolve: never through a base symlink where the tree has a directory (it could lead into the daemon's own mount)", async t => {
  const { root, base, view } = await setup(t);
  // The base's `bus` is a link (to a directory that has `zz`); the tree's `bus` is a directory.
  const elsewhere = await scratchDir(t, 'mdevfs-view-elsewhere-');
  await fsp.writeFile(path.join(elsewhere, 'zz'), 'beyond the link\n');
  await fsp.symlink(elsewhere, path.join(base.origin, 'bus'));
  root.mkdir('bus');
  t.equal(view.resolve('/bus/zz'), undefined, 'not looked up through the link');
  t.notOk(view.merges(root.get('bus') as KDir, '/bus'), 'and not merged, as resolve says');
  t.type(view.resolve('/class/net/lo/mtu'), BaseEntry, 'below a real base directory as before');

  // Deeper: the tree has bus/pci/devices; in the base, bus itself is the link. An lstat of
  // bus/pci/devices/x would follow it, so nothing below any tree directory under the link is asked.
  await fsp.mkdir(path.join(elsewhere, 'pci/devices'), { recursive: true });
  await fsp.writeFile(path.join(elsewhere, 'pci/devices/x'), 'beyond the link\n');
  (root.get('bus') as KDir).mkdir('pci').mkdir('devices');
  t.equal(view.resolve('/bus/pci/devices/x'), undefined, 'not through a link further up');
  t.notOk(view.merges(root.lookup('bus/pci/devices') as KDir, '/bus/pci/devices'));
  t.same(
    view.list(root.lookup('bus/pci/devices') as KDir, '/bus/pci/devices').map(e => e.name),
    [],
    'nor listed through it',
  );
});

t.test('list: the tree in kernfs order, then the base-only names; the base directories as they are', async t => {
  const { root, view } = await setup(t);
  const names = (d: KDir | BaseEntry, p: string) => view.list(d, p).map(e => e.name);
  const top = names(root, '/');
  t.same(top.slice(0, 3).sort(), ['class', 'devices', 'shared'], "the tree's first");
  t.same(top.slice(3).sort(), ['kernel'], "then the base's own");
  t.same(names(root.get('class') as KDir, '/class').sort(), ['mdev_bus', 'net', 'vfio', 'vfio-dev'], 'mdev_bus once, the base one hidden');
  t.same(names(root.lookup('devices/obj') as KDir, '/devices/obj'), ['own'], 'opaque');
  t.same(names(view.resolve('/devices/system') as BaseEntry, '/devices/system'), ['online']);
  t.ok(view.merges(root.get('class') as KDir, '/class'));
  t.notOk(view.merges(root.lookup('devices/obj') as KDir, '/devices/obj'));
  for (const e of view.list(root, '/')) t.ok(e.name === 'kernel' ? e.ino > MAX_NODE_INO : e.ino <= MAX_NODE_INO, `${e.name} ino`);
});

t.test('inode halves and the host numbers', async t => {
  const Q = 2 ** 30;
  t.equal(baseIno(1), MAX_NODE_INO + 2);
  t.equal(baseIno(1, 22, 22), MAX_NODE_INO + 2, "the base's own file system: its first quarter of the upper half");
  t.equal(baseIno(Q + 5, 22, 22), MAX_NODE_INO + 6, 'wraps within that quarter');
  // /sys/fs/cgroup numbers its root 1 as sysfs does: a submount's entries go to the second quarter.
  const sub = baseIno(1, 28, 22);
  t.ok(sub >= MAX_NODE_INO + 1 + Q && sub <= 0xffffffff, `a submount's ino ${sub}`);
  t.not(sub, baseIno(1, 22, 22), "no clash with the base's own ino 1");
  t.not(baseIno(1, 28, 22), baseIno(1, 29, 22), 'two submounts apart');
  const { base } = await setup(t);
  const ids = await readHostIds(base);
  t.same({ ...ids, iommuGroups: ids.iommuGroups.sort((a, b) => a - b) }, { iommuGroups: [0, 5], vfioGroupMinors: [7], vfioDevices: [2] });
});
