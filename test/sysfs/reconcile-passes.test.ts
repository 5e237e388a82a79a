// How often the presenter reconciles a device: once per kernel step that the
// core announces (core/model.ts DeviceStep), so a create costs three passes
// (device_add, driver attach, the type links) and a remove three (remove
// file and type links, unbind, device_del), in both profiles. The figures
// before the steps were announced were 5 and 6.
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
  t.test(`${profile}: a create and a remove reconcile the device three times each`, async t => {
    const core = new MdevCore({ profile });
    const pr = new SysfsPresenter(core).attach();
    await core.loadPlugin(testPlugin);
    const root = pr.root;

    const before = pr.devicePasses;
    await write(root, `${TA}/create`, `${U1}\n`);
    t.equal(pr.devicePasses - before, 3, 'create: added, bound, active');
    t.ok(root.lookup(`${P}/${U1}/driver`), 'driver link');
    t.ok(root.lookup(`${P}/${U1}/iommu_group`), 'group link');
    t.ok(root.lookup(`${P}/${U1}/mdev_type`), 'type link');
    t.ok(root.lookup(`${P}/${U1}/remove`), 'remove file');
    t.ok(root.lookup('/devices/virtual/vfio/0'), 'VFIO group char device');

    const mid = pr.devicePasses;
    await write(root, `${P}/${U1}/remove`, '1\n');
    t.equal(pr.devicePasses - mid, 3, 'remove: removing, unbound, removed');
    t.notOk(root.lookup(`${P}/${U1}`), 'device gone');
    t.notOk(root.lookup('/kernel/iommu_groups/0'), 'group gone');
    t.notOk(root.lookup('/devices/virtual/vfio/0'), 'VFIO group char device gone');
    pr.detach();
    await core.shutdown();
  });
}
