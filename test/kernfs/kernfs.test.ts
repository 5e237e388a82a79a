// The kernfs tree in memory: lookup, link-target math (docs/abi.md#link-targets), dead
// nodes, the open-time permission check and the seq_file/store semantics.
import t from 'tap';
import {
  KernfsRoot,
  type KDir,
  KAttr,
  KLink,
  relativeTarget,
  openAttr,
  checkOpen,
  O_RDONLY,
  O_WRONLY,
  O_RDWR,
  PAGE_SIZE,
} from '../../src/kernfs/index.js';
import { MdevError } from '../../src/core/errno.js';

const U = '83b8f4f2-509f-382f-3c1e-e6bfe0fa1001';

/** The errno a promise rejects with (undefined if it resolves). */
async function rejection(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
  } catch (e) {
    return e instanceof MdevError ? e.errno : `not an MdevError: ${String(e)}`;
  }
  return undefined;
}

function errnoOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return e instanceof MdevError ? e.errno : `not an MdevError: ${String(e)}`;
  }
  return undefined;
}

/** Build the docs/abi.md#layout tree for a parent at `parentPath`, with one device U of type `type`. */
function build(parentPath: string, type: string, drv: string) {
  const root = new KernfsRoot();
  const parent = root.ensurePath(parentPath);
  const types = parent.mkdir('mdev_supported_types');
  const typeDir = types.mkdir(type);
  const typeDevices = typeDir.mkdir('devices');
  const dev = parent.mkdir(U);
  const busMdev = root.ensurePath('bus/mdev');
  const drivers = busMdev.mkdir('drivers');
  const drvDir = drivers.mkdir(drv);
  const group = root.ensurePath('kernel/iommu_groups/7');
  const groupDevs = group.mkdir('devices');
  const links = {
    classLink: root.ensurePath('class/mdev_bus').symlink(parent.name, parent),
    mdevType: dev.symlink('mdev_type', typeDir),
    typeBack: typeDevices.symlink(U, dev),
    busDev: busMdev.mkdir('devices').symlink(U, dev),
    driver: dev.symlink('driver', drvDir),
    subsystem: dev.symlink('subsystem', busMdev),
    iommu: dev.symlink('iommu_group', group),
    groupBack: groupDevs.symlink(U, dev),
    drvBack: drvDir.symlink(U, dev),
  };
  return { root, parent, dev, links };
}

t.test('link targets are kernel-style relative text (kernfs_get_target_path, virtual parent)', async t => {
  const { links } = build('devices/virtual/mtty/mtty', 'mtty-2', 'mtty');
  t.equal(links.classLink.targetText(), '../../devices/virtual/mtty/mtty');
  t.equal(links.mdevType.targetText(), '../mdev_supported_types/mtty-2');
  t.equal(links.typeBack.targetText(), `../../../${U}`);
  t.equal(links.busDev.targetText(), `../../../devices/virtual/mtty/mtty/${U}`);
  t.equal(links.driver.targetText(), '../../../../../bus/mdev/drivers/mtty');
  t.equal(links.subsystem.targetText(), '../../../../../bus/mdev');
  t.equal(links.iommu.targetText(), '../../../../../kernel/iommu_groups/7');
  t.equal(links.groupBack.targetText(), `../../../../devices/virtual/mtty/mtty/${U}`);
  t.equal(links.drvBack.targetText(), `../../../../devices/virtual/mtty/mtty/${U}`);
});

t.test('link targets (kernfs_get_target_path, PCI parent)', async t => {
  const { links } = build('devices/pci0000:00/0000:00:02.0', 'i915-GVTg_V5_4', 'intel_vgpu_mdev');
  t.equal(links.classLink.targetText(), '../../devices/pci0000:00/0000:00:02.0');
  t.equal(links.mdevType.targetText(), '../mdev_supported_types/i915-GVTg_V5_4');
  t.equal(links.typeBack.targetText(), `../../../${U}`);
  t.equal(links.busDev.targetText(), `../../../devices/pci0000:00/0000:00:02.0/${U}`);
  t.equal(links.driver.targetText(), '../../../../bus/mdev/drivers/intel_vgpu_mdev');
  t.equal(links.subsystem.targetText(), '../../../../bus/mdev');
  t.equal(links.iommu.targetText(), '../../../../kernel/iommu_groups/7');
  t.equal(links.groupBack.targetText(), `../../../../devices/pci0000:00/0000:00:02.0/${U}`);
  t.equal(links.drvBack.targetText(), `../../../../devices/pci0000:00/0000:00:02.0/${U}`);
});

t.test('relativeTarget edge cases', async t => {
  const root = new KernfsRoot();
  const a = root.ensurePath('a/b/c');
  t.equal(relativeTarget(a, a), '../c', 'a link to its own directory');
  t.equal(relativeTarget(a, a.parent!), '../../b');
  t.equal(relativeTarget(root, a), 'a/b/c', 'from the root: no ../');
  const x = root.ensurePath('x');
  t.equal(relativeTarget(a, x), '../../../x');
  t.equal(relativeTarget(x, a), '../a/b/c');
});

t.test('lookup walks Maps, does not follow links, and is exact', async t => {
  const { root, dev } = build('devices/virtual/mtty/mtty', 'mtty-1', 'mtty');
  t.equal(root.lookup(`/devices/virtual/mtty/mtty/${U}`), dev);
  t.equal(root.lookup(`devices//virtual/mtty/mtty/${U}/`), dev, 'empty components ignored');
  t.equal(root.lookup('/'), root);
  t.equal(root.lookup(''), root);
  t.equal(root.lookup('/nope'), undefined);
  t.equal(root.lookup(`/bus/mdev/devices/${U}/remove`), undefined, 'links are not followed');
  t.type(root.lookup(`/bus/mdev/devices/${U}`), KLink);
  t.equal(root.lookup('/class/mdev_bus/mtty/x'), undefined);

  // A big directory is never scanned: lookups are Map hits (timing is npm run bench's job).
  const big = root.mkdir('big');
  for (let i = 0; i < 50_000; i++) big.mkdir(`d${i}`).attr('f', 0o444, { show: () => `${i}\n` });
  t.equal(big.subdirs, 50_000);
  let iterations = 0;
  const m = big.children as unknown as Record<string | symbol, (...a: unknown[]) => unknown>;
  for (const k of ['keys', 'values', 'entries', 'forEach', Symbol.iterator] as const) {
    const orig = m[k]!;
    m[k] = function (this: unknown, ...a: unknown[]) {
      iterations++;
      return orig.apply(this, a);
    };
  }
  let found = 0;
  for (let i = 0; i < 10_000; i++) if (root.lookup(`/big/d${(i * 7919) % 50_000}/f`) instanceof KAttr) found++;
  t.equal(found, 10_000);
  t.equal(iterations, 0, '10,000 lookups in a 50,000-entry directory iterate nothing');
  big.children.forEach(() => {});
  t.equal(iterations, 1, 'the counter sees an iteration');
});

t.test('names, duplicates and nlink', async t => {
  const root = new KernfsRoot();
  const d = root.mkdir('d');
  t.equal(
    errnoOf(() => root.mkdir('d')),
    'EEXIST',
  );
  t.equal(
    errnoOf(() => d.attr('a/b', 0o444, {})),
    'EINVAL',
  );
  t.equal(
    errnoOf(() => d.attr('..', 0o444, {})),
    'EINVAL',
  );
  d.attr('f', 0o444, {});
  t.equal(
    errnoOf(() => d.ensureDir('f')),
    'EEXIST',
  );
  t.equal(d.ensureDir('sub'), d.ensureDir('sub'));
  t.equal(d.subdirs, 1);
  t.equal(root.subdirs, 1);
  t.not(d.ino, root.ino);
  t.equal(root.ino, 1);
});

t.test('removal marks the whole subtree dead and keeps link text computable', async t => {
  const { root, parent, dev, links } = build('devices/virtual/mtty/mtty', 'mtty-1', 'mtty');
  const f = dev.attr('remove', 0o200, { store: () => {} });
  const h = openAttr(f, O_WRONLY);
  parent.remove();
  t.ok(parent.dead && dev.dead && f.dead, 'descendants are dead');
  t.equal(root.lookup('/devices/virtual/mtty/mtty'), undefined);
  t.equal(root.lookup('/devices/virtual/mtty')!.kind, 'dir');
  t.equal((root.lookup('/devices/virtual/mtty') as KDir).subdirs, 0);
  t.equal(await rejection(h.write(Buffer.from('1'))), 'ENODEV');
  t.equal(links.busDev.targetText(), `../../../devices/virtual/mtty/mtty/${U}`);
  t.equal(
    errnoOf(() => openAttr(f, O_WRONLY)),
    'ENOENT',
  );
  t.equal(
    errnoOf(() => root.remove()),
    'EPERM',
  );
});

t.test('open-time check: EACCES by mode bits, even for root', async t => {
  const root = new KernfsRoot();
  const wo = root.attr('create', 0o200, { store: () => {} });
  const ro = root.attr('name', 0o444, { show: () => 'x\n' });
  const rw = root.attr('uevent', 0o644, { show: () => '', store: () => {} });
  t.equal(
    errnoOf(() => checkOpen(wo, O_RDONLY)),
    'EACCES',
  );
  t.equal(
    errnoOf(() => checkOpen(wo, O_RDWR)),
    'EACCES',
  );
  t.equal(
    errnoOf(() => checkOpen(wo, O_WRONLY)),
    undefined,
  );
  t.equal(
    errnoOf(() => checkOpen(ro, O_WRONLY)),
    'EACCES',
  );
  t.equal(
    errnoOf(() => checkOpen(ro, O_RDWR)),
    'EACCES',
  );
  t.equal(
    errnoOf(() => checkOpen(ro, O_RDONLY | 0o1000 /* O_TRUNC */)),
    undefined,
  );
  t.equal(
    errnoOf(() => checkOpen(rw, O_RDWR | 0o1000)),
    undefined,
  );
  t.equal(
    errnoOf(() => openAttr(root, O_RDONLY)),
    'EISDIR',
  );
  // chmod adds a read bit: the open passes, the missing show gives EIO (docs/abi.md#file-behaviour).
  wo.mode = 0o600;
  const h = openAttr(wo, O_RDONLY);
  t.equal(await rejection(h.read(0, 100)), 'EIO');
});

t.test('reads: generated at offset 0, served from the snapshot, EOF past the end', async t => {
  const root = new KernfsRoot();
  let n = 0;
  const f = root.attr('counter', 0o444, { show: () => `value ${++n}\n` });
  const h = openAttr(f, O_RDONLY);
  t.equal((await h.read(0, 3)).toString(), 'val');
  t.equal((await h.read(3, 100)).toString(), 'ue 1\n', 'later offsets come from the snapshot');
  t.equal((await h.read(8, 100)).length, 0, 'past the end: 0 bytes');
  t.equal((await h.read(0, 100)).toString(), 'value 2\n', 'offset 0 regenerates');
  const h2 = openAttr(f, O_RDONLY);
  t.equal((await h2.read(6, 100)).toString(), '3\n', 'a first read past 0 generates too');

  const big = root.attr('big', 0o444, { show: () => 'x'.repeat(10_000) });
  t.equal((await openAttr(big, O_RDONLY).read(0, 20_000)).length, PAGE_SIZE - 1, 'show cut to PAGE_SIZE - 1');
  const fails = root.attr('fails', 0o444, {
    show: () => {
      throw new MdevError('ENODEV');
    },
  });
  t.equal(await rejection(openAttr(fails, O_RDONLY).read(0, 10)), 'ENODEV');
  const junk = root.attr('junk', 0o444, {
    show: () => {
      throw new Error('boom');
    },
  });
  t.equal(await rejection(openAttr(junk, O_RDONLY).read(0, 10)), 'EIO');
});

t.test('writes: one store per write, empty stores nothing, cut to 4096', async t => {
  const root = new KernfsRoot();
  const got: Buffer[] = [];
  const f = root.attr('sink', 0o200, {
    store: d => {
      got.push(Buffer.from(d));
    },
  });
  const h = openAttr(f, O_WRONLY);
  t.equal(await h.write(Buffer.from('1\n')), 2);
  t.equal(await h.write(Buffer.alloc(0)), 0);
  t.equal(got.length, 1, 'a zero-length write does not store');
  t.equal(await h.write(Buffer.alloc(5000, 0x41)), PAGE_SIZE);
  t.equal(got[1]!.length, PAGE_SIZE);
  const bad = root.attr('bad', 0o200, {
    store: () => {
      throw { errno: 'EUSERS' };
    },
  });
  t.equal(await rejection(openAttr(bad, O_WRONLY).write(Buffer.from('x'))), 'EUSERS');
  const nostore = root.attr('nostore', 0o644, { show: () => '' });
  t.equal(await rejection(openAttr(nostore, O_WRONLY).write(Buffer.from('x'))), 'EIO');
  t.type(f, KAttr);
});
