// How often the presenter reconciles a device: once per kernel step that the
// core announces (core/model.ts DeviceStep), so a create costs four passes
// (device_add, driver attach, the end of the probe, the type links) and a
// remove four (remove file and type links, the driver's release up to its
// wait for the last close, unbind, device_del), in both profiles. Before the
// steps were announced, one per changed field, the figures were 5 and 6
// (modern) and 4 and 5 (legacy).
import t from 'tap';
import { MdevCore } from '../../src/core/core.js';
import type { Profile } from '../../src/core/api.js';
import { SysfsPresenter } from '../../src/sysfs/presenter.js';
import { KAttr, openAttr, O_WRONLY, type KDir } from '../../src/kernfs/index.js';
import testPlugin from '../fixtures/test-plugin.js';

const P = '/devices/virtual/mtest/mtest';
const TA = `${P}/mdev_supported_types/mtest-a`;
const U1 = '83b8f4f2-509f-382f-3c1e-e6bfe0fa1001';

async function write(root: KDir, path: string, data: string): Promise<number> {
  const n = root.lookup(path);
  if (!(n instanceof KAttr)) throw new Error(`${path} is not an attribute`);
  return openAttr(n, O_WRONLY).write(Buffer.from(data));
}

for (const profile of ['modern', 'legacy'] as Profile[]) {
  t.test(`${profile}: a create and a remove reconcile the device four times each`, async t => {
    const core = new MdevCore({ profile });
    const pr = new SysfsPresenter(core).attach();
    await core.loadPlugin(testPlugin);
    const root = pr.root;

    const before = pr.devicePasses;
    await write(root, `${TA}/create`, `${U1}\n`);
    t.equal(pr.devicePasses - before, 4, 'create: added, bound, probed, active');
    t.ok(root.lookup(`${P}/${U1}/driver`), 'driver link');
    t.ok(root.lookup(`${P}/${U1}/iommu_group`), 'group link');
    t.ok(root.lookup(`${P}/${U1}/mdev_type`), 'type link');
    t.ok(root.lookup(`${P}/${U1}/remove`), 'remove file');
    t.ok(root.lookup('/devices/virtual/vfio/0'), 'VFIO group char device');

    const mid = pr.devicePasses;
    await write(root, `${P}/${U1}/remove`, '1\n');
    t.equal(pr.devicePasses - mid, 4, 'remove: removing, releasing, unbound, removed');
    t.notOk(root.lookup(`${P}/${U1}`), 'device gone');
    t.notOk(root.lookup('/kernel/iommu_groups/0'), 'group gone');
    t.notOk(root.lookup('/devices/virtual/vfio/0'), 'VFIO group char device gone');
    pr.detach();
    await core.shutdown();
  });
}

// While the vendor's create runs, the tree shows exactly the steps announced
// so far: device_add's files and the driver attach (driver link, IOMMU group;
// legacy: vfio_mdev's group char device), not what the probe makes (modern:
// the VFIO objects, the vendor's files) nor the type links; a remove written
// then deletes only `remove` (EAGAIN). Nothing unannounced leaks in.
for (const profile of ['modern', 'legacy'] as Profile[]) {
  t.test(`${profile}: the tree during a create is the announced state`, async t => {
    const core = new MdevCore({ profile });
    const pr = new SysfsPresenter(core).attach();
    let release!: () => void;
    await core.loadPlugin({
      name: 'held',
      async init(mdev) {
        await mdev.registerDevice(
          { path: 'devices/virtual/held/held', typePrefix: 'held', subsystem: { class: 'held' } },
          {
            driver: 'held',
            deviceApi: 'vfio-pci',
            maxInstances: 2,
            types: [{ id: '1' }],
            mdevAttrGroups: [{ attrs: [{ name: 'vendor_file', show: () => 'x\n' }] }],
            create: () => new Promise<void>(r => (release = r)),
            remove() {},
          },
        );
      },
    });
    const root = pr.root;
    const D = `/devices/virtual/held/held/${U1}`;
    const creating = write(root, '/devices/virtual/held/held/mdev_supported_types/held-1/create', U1);
    await new Promise(r => setImmediate(r));
    t.ok(root.lookup(`${D}/uevent`), 'device_add: the directory');
    t.ok(root.lookup(`${D}/driver`), 'driver attach: driver link');
    t.ok(root.lookup(`${D}/iommu_group`), 'driver attach: IOMMU group link');
    t.ok(root.lookup('/kernel/iommu_groups/0/devices'), 'driver attach: the group');
    // Modern: the vendor's create is its probe, which makes the VFIO objects
    // (at its end, in the samples); really_probe adds dev_groups after it.
    // Legacy: vfio_mdev's probe made the group char device before the create.
    t.equal(!!root.lookup('/devices/virtual/vfio/0/dev'), profile === 'legacy', 'VFIO group char device: legacy before the create');
    t.notOk(root.lookup(`${D}/vfio-dev`), 'vfio-dev: not before the probe has made it');
    t.notOk(root.lookup(`${D}/vendor_file`), 'vendor files: after the probe (modern), after the create (legacy)');
    t.notOk(root.lookup(`${D}/mdev_type`), 'no type link yet');
    t.equal(!!root.lookup(`${D}/remove`), profile === 'modern', 'remove: modern from device_add, legacy after create');
    if (profile === 'modern') {
      const err = await write(root, `${D}/remove`, '1').catch((e: { errno?: string }) => e.errno);
      t.equal(err, 'EAGAIN', 'a remove during the create');
      t.notOk(root.lookup(`${D}/remove`), 'its file is gone');
      t.ok(root.lookup(`${D}/driver`), 'the rest stays');
    }
    release();
    await creating;
    t.ok(root.lookup(`${D}/mdev_type`), 'type link after the create');
    t.ok(root.lookup(`${D}/vendor_file`), 'vendor files after the create');
    t.ok(root.lookup('/devices/virtual/vfio/0/dev'), 'VFIO group char device after the create');
    t.equal(!!root.lookup(`${D}/vfio-dev/vfio0`), profile === 'modern', 'vfio-dev: modern only');
    pr.detach();
    await core.shutdown();
  });
}
