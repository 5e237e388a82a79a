// The presenter in memory, on the real MdevCore: the tree as a function of the
// core's state, through create/remove transitions, unload, late attach and scale.
import t from 'tap';
import { MdevCore } from '../../src/core/core.js';
import type { VendorPlugin } from '../../src/core/api.js';
import { SysfsPresenter } from '../../src/sysfs/presenter.js';
import { KAttr, type KDir, KLink, openAttr, O_RDONLY, O_WRONLY } from '../../src/kernfs/index.js';
import testPlugin from '../fixtures/test-plugin.js';

const P = '/devices/virtual/mtest/mtest';
const TA = `${P}/mdev_supported_types/mtest-a`;
const U1 = '83b8f4f2-509f-382f-3c1e-e6bfe0fa1001';

async function read(root: KDir, path: string): Promise<string> {
  const n = root.lookup(path);
  if (!(n instanceof KAttr)) throw new Error(`${path} is not an attribute`);
  return (await openAttr(n, O_RDONLY).read(0, 4096)).toString();
}

async function write(root: KDir, path: string, data: string): Promise<number> {
  const n = root.lookup(path);
  if (!(n instanceof KAttr)) throw new Error(`${path} is not an attribute`);
  return openAttr(n, O_WRONLY).write(Buffer.from(data));
}

function linkText(root: KDir, path: string): string | undefined {
  const n = root.lookup(path);
  return n instanceof KLink ? n.targetText() : undefined;
}

t.test('writes through the tree drive the core', async t => {
  const core = new MdevCore();
  const pr = new SysfsPresenter(core).attach();
  await core.loadPlugin(testPlugin);
  const root = pr.root;
  t.equal(pr.parentCount, 2);
  t.equal(await write(root, `${TA}/create`, `${U1}\n`), 37);
  t.ok(core.device(U1), 'the core has it');
  t.equal(linkText(root, `${P}/${U1}/mdev_type`), '../mdev_supported_types/mtest-a');
  t.equal(await read(root, `${TA}/available_instances`), '2\n');
  t.equal(await write(root, `${P}/${U1}/remove`, '1'), 1);
  t.equal(root.lookup(`${P}/${U1}`), undefined);
  t.equal(await read(root, `${TA}/available_instances`), '3\n');
  await core.shutdown();
});

t.test('intermediate states: adding and removing', async t => {
  const core = new MdevCore({ callTimeoutMs: 5000 });
  const pr = new SysfsPresenter(core).attach();
  let release!: () => void;
  const gate = new Promise<void>(r => {
    release = r;
  });
  const plugin: VendorPlugin = {
    name: 'slow',
    async init(mdev) {
      await mdev.registerDevice(
        { path: 'devices/virtual/slow/slow', typePrefix: 'slow', subsystem: { class: 'slow' } },
        {
          driver: 'slow',
          deviceApi: 'vfio-pci',
          maxInstances: 4,
          types: [{ id: 'x' }],
          async create() {
            await gate;
          },
          remove() {},
        },
      );
    },
  };
  await core.loadPlugin(plugin);
  const root = pr.root;
  const D = `/devices/virtual/slow/slow/${U1}`;
  const creating = write(root, '/devices/virtual/slow/slow/mdev_supported_types/slow-x/create', U1);
  await new Promise(r => setTimeout(r, 50));
  t.equal(core.device(U1)?.state, 'adding');
  t.ok(root.lookup(D), 'dir exists while adding');
  t.ok(root.lookup(`${D}/uevent`) && root.lookup(`${D}/power/control`) && root.lookup(`${D}/subsystem`));
  t.ok(root.lookup(`/bus/mdev/devices/${U1}`));
  t.equal(root.lookup(`${D}/mdev_type`), undefined, 'not linked to its type yet');
  t.equal(root.lookup(`/devices/virtual/slow/slow/mdev_supported_types/slow-x/devices/${U1}`), undefined);
  release();
  t.equal(await creating, 36);
  t.ok(root.lookup(`${D}/mdev_type`));

  // A remove waits for the VFIO device's last close: 'removing' meanwhile.
  const h = await core.vfio.open(U1);
  const removing = write(root, `${D}/remove`, '1');
  await new Promise(r => setTimeout(r, 50));
  t.equal(core.device(U1)?.state, 'removing');
  t.ok(root.lookup(D), 'dir still there');
  t.equal(root.lookup(`${D}/remove`), undefined, 'remove gone first');
  t.equal(root.lookup(`${D}/mdev_type`), undefined, 'type link gone');
  t.equal(await write(root, `/devices/virtual/slow/slow/mdev_supported_types/slow-x/create`, U1).catch(e => e.errno), 'EEXIST');
  await h.close();
  t.equal(await removing, 1);
  t.equal(root.lookup(D), undefined);
  t.equal(root.lookup(`/bus/mdev/devices/${U1}`), undefined);
  await core.shutdown();
});

t.test('unloading a plugin prunes what its parents brought', async t => {
  const core = new MdevCore();
  const pr = new SysfsPresenter(core).attach();
  await core.loadPlugin(testPlugin);
  const root = pr.root;
  await write(root, `${TA}/create`, U1);
  await core.unloadPlugin('mtest');
  t.equal(root.lookup(P), undefined);
  t.equal(root.lookup('/devices/virtual/mtest'), undefined, 'empty class glue dir pruned');
  t.equal(root.lookup('/class/mtest'), undefined, 'empty class dir pruned');
  t.equal(root.lookup('/devices/pci0000:00'), undefined);
  t.ok(root.lookup('/devices/virtual'), 'standard dirs stay');
  t.same([...(root.lookup('/class/mdev_bus') as KDir).children.keys()], [], 'class/mdev_bus stays, empty');
  t.equal(root.lookup(`/bus/mdev/devices/${U1}`), undefined);
  t.equal(root.lookup('/kernel/iommu_groups/1'), undefined, "the parent's own group went with it");
  t.same([...(root.lookup('/kernel/iommu_groups') as KDir).children.keys()], []);
  t.same([...(root.lookup('/bus/mdev/drivers') as KDir).children.keys()], []);
  await core.shutdown();
});

t.test('attaching late builds the tree from the current state', async t => {
  const core = new MdevCore();
  await core.loadPlugin(testPlugin);
  const t1 = core.parent('mtest')!.types[0]!;
  await core.create(t1, U1);
  const pr = new SysfsPresenter(core).attach();
  t.equal(linkText(pr.root, `${P}/${U1}/iommu_group`), '../../../../../kernel/iommu_groups/0');
  t.equal(await read(pr.root, `${P}/${U1}/vendor/sample_mdev_dev`), `This is MDEV ${U1}\n`);
  pr.syncAll();
  t.equal(linkText(pr.root, `/bus/mdev/devices/${U1}`), `../../..${P}/${U1}`, 'syncAll is idempotent');
  pr.detach();
  await core.shutdown();
});

t.test('scale: with 50,000 devices, a lookup and a read iterate no directory', async t => {
  // Timing belongs to `npm run bench`; here the property behind it is checked
  // exactly: path lookup is one Map hit per component, never a scan.
  const core = new MdevCore();
  const pr = new SysfsPresenter(core).attach();
  await core.loadPlugin({
    name: 'many',
    async init(mdev) {
      await mdev.registerDevice(
        { path: 'devices/virtual/many/many', typePrefix: 'many', subsystem: { class: 'many' } },
        {
          driver: 'many',
          deviceApi: 'vfio-pci',
          maxInstances: 100_000,
          types: [{ id: 't' }],
          mdevAttrGroups: [{ name: 'vendor', attrs: [{ name: 'v', show: d => `${d.uuid}\n` }] }],
          create() {},
          remove() {},
        },
      );
    },
  });
  const type = core.parent('many')!.types[0]!;
  const uuid = (i: number) => `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`;
  for (let i = 0; i < 50_000; i++) await core.create(type, uuid(i));
  const big = [
    '/bus/mdev/devices',
    '/devices/virtual/many/many',
    '/kernel/iommu_groups',
    '/devices/virtual/many/many/mdev_supported_types/many-t/devices',
    '/bus/mdev/drivers/many',
  ].map(p => pr.root.lookup(p) as KDir);
  for (const d of big) t.ok(d.children.size >= 50_000, `${d.path()} holds ${d.children.size}`);

  // Count every iteration of those directories' Maps while looking up and reading.
  let iterations = 0;
  const restore: Array<() => void> = [];
  for (const d of big) {
    const m = d.children as unknown as Record<string | symbol, unknown>;
    for (const k of ['keys', 'values', 'entries', 'forEach', Symbol.iterator] as const) {
      const orig = m[k] as (...a: unknown[]) => unknown;
      m[k] = function (this: unknown, ...a: unknown[]) {
        iterations++;
        return orig.apply(this, a);
      };
      restore.push(() => {
        delete m[k];
      });
    }
  }
  for (const i of [0, 9, 24_999, 49_999]) {
    const u = uuid(i);
    t.equal(await read(pr.root, `/devices/virtual/many/many/${u}/vendor/v`), `${u}\n`);
    t.ok(pr.root.lookup(`/bus/mdev/devices/${u}`));
    t.ok(pr.root.lookup(`/kernel/iommu_groups/${i}/devices/${u}`));
  }
  await core.create(type, uuid(50_000));
  for (const r of restore) r();
  t.equal(iterations, 0, 'no directory was iterated by lookups, reads or a create');
  // The counter itself works: a listing does iterate.
  const m = big[0]!.children;
  let listed = 0;
  const orig = m.keys;
  m.keys = function (this: typeof m) {
    listed++;
    return orig.call(this);
  };
  t.equal([...m.keys()].length, m.size);
  t.equal(listed, 1);
  await core.shutdown();
});
