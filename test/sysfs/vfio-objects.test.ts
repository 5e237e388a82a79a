// The VFIO objects of a bound mdev (docs/abi.md#vfio-objects, modern only): the group
// char device /sys/devices/virtual/vfio/<N> (class vfio) and the per-device
// <uuid>/vfio-dev/vfio<k> (class vfio-dev), in memory on the real core.
import t from 'tap';
import { MdevCore } from '../../src/core/core.js';
import type { Uevent } from '../../src/core/api.js';
import { SysfsPresenter } from '../../src/sysfs/presenter.js';
import { KAttr, KDir, KLink, openAttr, O_RDONLY } from '../../src/kernfs/index.js';
import testPlugin from '../fixtures/test-plugin.js';

const P = '/devices/virtual/mtest/mtest';
const PCI = '/devices/pci0000:00/0000:00:02.0';
const TG = `${PCI}/mdev_supported_types/i915-GVTg_V5_4`;
const U1 = '83b8f4f2-509f-382f-3c1e-e6bfe0fa1001';
const U2 = '83b8f4f2-509f-382f-3c1e-e6bfe0fa1002';
const U3 = '83b8f4f2-509f-382f-3c1e-e6bfe0fa1003';

async function read(root: KDir, path: string): Promise<string> {
  const n = root.lookup(path);
  if (!(n instanceof KAttr)) throw new Error(`${path} is not an attribute`);
  return (await openAttr(n, O_RDONLY).read(0, 4096)).toString();
}

function linkText(root: KDir, path: string): string | undefined {
  const n = root.lookup(path);
  return n instanceof KLink ? n.targetText() : undefined;
}

function names(root: KDir, path: string): string[] | undefined {
  const n = root.lookup(path);
  return n instanceof KDir ? [...n.children.keys()].sort() : undefined;
}

async function setup(profile: 'modern' | 'legacy') {
  const core = new MdevCore({ profile });
  const pr = new SysfsPresenter(core).attach();
  const uevents: Uevent[] = [];
  core.on('uevent', e => uevents.push(e));
  await core.loadPlugin(testPlugin);
  const typeA = core.parent('mtest')!.types[0]!;
  const typeG = core.parent('0000:00:02.0')!.types[0]!;
  return { core, root: pr.root, uevents, typeA, typeG };
}

t.test('modern: layout, contents and link texts', async t => {
  const { core, root, uevents, typeA, typeG } = await setup('modern');
  uevents.length = 0;
  const d1 = await core.create(typeA, U1);
  t.same(
    uevents.map(e => [e.ACTION, e.DEVPATH, e.SUBSYSTEM]),
    [
      ['add', `${P}/${U1}`, 'mdev'],
      ['add', '/devices/virtual/vfio/0', 'vfio'],
      ['add', `${P}/${U1}/vfio-dev/vfio0`, 'vfio-dev'],
      ['bind', `${P}/${U1}`, 'mdev'],
    ],
    'create: add, group char device, vfio-dev, bind (docs/abi.md#uevent-order)',
  );
  t.same(uevents[1], {
    ACTION: 'add',
    DEVPATH: '/devices/virtual/vfio/0',
    SUBSYSTEM: 'vfio',
    MAJOR: '511',
    MINOR: '0',
    DEVNAME: 'vfio/0',
    SEQNUM: uevents[1]!.SEQNUM,
  });
  t.same(uevents[2], {
    ACTION: 'add',
    DEVPATH: `${P}/${U1}/vfio-dev/vfio0`,
    SUBSYSTEM: 'vfio-dev',
    MAJOR: '510',
    MINOR: '0',
    DEVNAME: 'vfio/devices/vfio0',
    SEQNUM: uevents[2]!.SEQNUM,
  });
  t.same([d1.iommuGroup, d1.vfioGroupMinor, d1.vfioDevIndex], [0, 0, 0]);

  // The per-device object
  const V = `${P}/${U1}/vfio-dev/vfio0`;
  t.same(names(root, `${P}/${U1}/vfio-dev`), ['vfio0']);
  t.same(names(root, V), ['dev', 'device', 'power', 'subsystem', 'uevent']);
  t.equal(await read(root, `${V}/dev`), '510:0\n');
  t.equal(await read(root, `${V}/uevent`), 'MAJOR=510\nMINOR=0\nDEVNAME=vfio/devices/vfio0\n');
  t.equal(linkText(root, `${V}/subsystem`), '../../../../../../../class/vfio-dev');
  t.equal(linkText(root, `${V}/device`), `../../../${U1}`);
  t.equal(await read(root, `${V}/power/runtime_status`), 'unsupported\n');
  t.equal(linkText(root, '/class/vfio-dev/vfio0'), `../../devices/virtual/mtest/mtest/${U1}/vfio-dev/vfio0`);

  // The group char device
  const G = '/devices/virtual/vfio/0';
  t.same(names(root, G), ['dev', 'power', 'subsystem', 'uevent']);
  t.equal(await read(root, `${G}/dev`), '511:0\n');
  t.equal(await read(root, `${G}/uevent`), 'MAJOR=511\nMINOR=0\nDEVNAME=vfio/0\n');
  t.equal(linkText(root, `${G}/subsystem`), '../../../../class/vfio');
  t.equal(linkText(root, '/class/vfio/0'), '../../devices/virtual/vfio/0');
  t.equal(linkText(root, `${P}/${U1}/iommu_group`), '../../../../../kernel/iommu_groups/0');

  // The PCI parent reserves group 1: the next mdev gets group 2, group minor 1, vfio1.
  const d2 = await core.create(typeG, U2);
  t.same([d2.iommuGroup, d2.vfioGroupMinor, d2.vfioDevIndex], [2, 1, 1]);
  t.equal(await read(root, '/devices/virtual/vfio/2/uevent'), 'MAJOR=511\nMINOR=1\nDEVNAME=vfio/2\n');
  t.equal(linkText(root, `${PCI}/${U2}/vfio-dev/vfio1/subsystem`), '../../../../../../class/vfio-dev');
  t.equal(linkText(root, '/class/vfio-dev/vfio1'), `../../devices/pci0000:00/0000:00:02.0/${U2}/vfio-dev/vfio1`);
  t.same(names(root, '/class/vfio'), ['0', '2']);
  t.same(names(root, '/class/vfio-dev'), ['vfio0', 'vfio1']);
  t.same(names(root, '/devices/virtual/vfio'), ['0', '2']);
  t.equal(root.lookup(`${TG}/devices/${U2}`) instanceof KLink, true);

  // Remove: vfio-dev, then the group char device, before the unbind (docs/abi.md#uevent-order); all gone.
  uevents.length = 0;
  await core.remove(d1);
  t.same(
    uevents.map(e => [e.ACTION, e.DEVPATH]),
    [
      ['remove', `${P}/${U1}/vfio-dev/vfio0`],
      ['remove', '/devices/virtual/vfio/0'],
      ['unbind', `${P}/${U1}`],
      ['remove', `${P}/${U1}`],
    ],
  );
  t.same(
    uevents.slice(0, 2).map(e => [e.MAJOR, e.MINOR, e.DEVNAME]),
    [
      ['510', '0', 'vfio/devices/vfio0'],
      ['511', '0', 'vfio/0'],
    ],
  );
  t.equal(root.lookup('/devices/virtual/vfio/0'), undefined);
  t.equal(root.lookup('/class/vfio/0'), undefined);
  t.equal(root.lookup('/class/vfio-dev/vfio0'), undefined);
  t.same(names(root, '/class/vfio'), ['2']);

  // Lowest free index first: the freed vfio0 and minor 0 are reused.
  const d3 = await core.create(typeA, U3);
  t.same([d3.iommuGroup, d3.vfioGroupMinor, d3.vfioDevIndex], [0, 0, 0]);
  t.equal(linkText(root, '/class/vfio-dev/vfio0'), `../../devices/virtual/mtest/mtest/${U3}/vfio-dev/vfio0`);

  await core.remove(d2);
  await core.remove(d3);
  t.equal(root.lookup('/devices/virtual/vfio'), undefined, 'the class glue dir goes with its last device');
  t.equal(root.lookup('/class/vfio'), undefined);
  t.equal(root.lookup('/class/vfio-dev'), undefined);
  await core.shutdown();
});

t.test('modern: the objects follow the driver binding (unregister / register again)', async t => {
  const core = new MdevCore();
  const pr = new SysfsPresenter(core).attach();
  const root = pr.root;
  await core.host.registerDriver({ name: 'mtest' });
  await core.loadPlugin(testPlugin);
  const d = await core.create(core.parent('mtest')!.types[0]!, U1);
  t.ok(root.lookup(`${P}/${U1}/vfio-dev/vfio0`));
  await core.host.unregisterDriver('mtest');
  t.same([d.state, d.vfioDevIndex, d.vfioGroupMinor], ['active', undefined, undefined]);
  t.equal(root.lookup(`${P}/${U1}/vfio-dev`), undefined, 'vfio-dev/ goes with the unbind');
  t.equal(root.lookup('/devices/virtual/vfio'), undefined);
  await core.host.registerDriver({ name: 'mtest' });
  t.same([d.vfioDevIndex, d.vfioGroupMinor], [0, 0]);
  t.equal(await read(root, `${P}/${U1}/vfio-dev/vfio0/dev`), '510:0\n');
  // A late attach builds them from the state.
  const late = new SysfsPresenter(core).attach();
  t.equal(linkText(late.root, '/class/vfio/0'), '../../devices/virtual/vfio/0');
  t.equal(linkText(late.root, `${P}/${U1}/vfio-dev/vfio0/device`), `../../../${U1}`);
  late.detach();
  await core.shutdown();
  t.equal(root.lookup('/devices/virtual/vfio'), undefined);
});

t.test("legacy (4.10): the group char device from vfio_mdev's probe, no vfio-dev class", async t => {
  const { core, root, uevents, typeA } = await setup('legacy');
  const d = await core.create(typeA, U1);
  t.same([d.vfioDevIndex, d.vfioGroupMinor], [undefined, 0]);
  // vfio_add_group_dev() → vfio_create_group() → device_create(vfio.class, ..., "%d").
  t.same(
    uevents.map(e => `${e.ACTION} ${e.DEVPATH}`),
    [`add ${P}/${U1}`, 'add /devices/virtual/vfio/0'],
  );
  t.ok(root.lookup('/devices/virtual/vfio/0/dev'), 'the group char device');
  t.equal(linkText(root, '/class/vfio/0'), '../../devices/virtual/vfio/0');
  t.equal(root.lookup(`${P}/${U1}/vfio-dev`), undefined, 'no vfio-dev class in 4.10');
  t.equal(root.lookup('/class/vfio-dev'), undefined);
  await core.remove(d);
  t.same(
    uevents.map(e => e.ACTION),
    ['add', 'add', 'remove', 'remove'],
  );
  t.equal(root.lookup('/devices/virtual/vfio/0'), undefined);
  await core.shutdown();
});
