// The legacy (4.10) profile over FUSE (docs/abi.md#the-legacy-profile).
import t from 'tap';
import { startDaemon, mdevfsMount, FIXTURES } from '../helpers/daemon.js';
import { sys, writeOnce, readOnce, one } from '../helpers/sys.js';
import { P, TA, TB, TG } from '../fixtures/test-plugin.js';

const PLUGIN = `${FIXTURES}/test-plugin.ts`;
const U1 = '83b8f4f2-509f-382f-3c1e-e6bfe0fa1001';
const U2 = '83b8f4f2-509f-382f-3c1e-e6bfe0fa1002';

t.test('legacy profile, test plugin', async t => {
  const d = await startDaemon(t, { command: mdevfsMount('--driver', PLUGIN, '--profile', 'legacy') });
  const p = d.p;
  const link = (rel: string) => one(['readlink', p(rel)]);
  t.match(d.stdout, /\(profile legacy, 2 parents\)/);

  t.test("type directories hold only the vendor's standard attributes", async t => {
    t.same(await one(['listdir', p(TA)]), ['available_instances', 'create', 'description', 'device_api', 'devices', 'extra', 'name']);
    t.same(await one(['listdir', p(TB)]), ['available_instances', 'create', 'device_api', 'devices'], 'no name: the spec has none');
    t.same(
      await one(['listdir', p(TG)]),
      ['available_instances', 'create', 'description', 'device_api', 'devices'],
      'legacyAttrs: old GVT had no name',
    );
  });

  t.test('parent: dev_attr_groups shown', async t => {
    t.equal(await readOnce(p(`${P}/mtest_dev/sample_mtest_dev`)), 'This is phy device\n');
    t.same(await one(['listdir', p('bus/mdev/drivers')]), ['vfio_mdev']);
    t.same(await one(['listdir', p('kernel/iommu_groups/1')]), ['devices'], 'a 4.10 group dir holds only devices/');
  });

  t.test('device: bound to vfio_mdev, group dir with only devices/', async t => {
    const r = await sys([
      ['open', p(`${TA}/create`), 'O_WRONLY|O_TRUNC'],
      ['write', 0, `${U1}\n`],
      ['close', 0],
      ['lstat', p(`${P}/${U1}/remove`)],
      ['lstat', p(`${P}/${U1}/mdev_type`)],
      ['lstat', p(`${P}/${U1}/vendor/sample_mdev_dev`)],
      ['readlink', p(`${P}/${U1}/driver`)],
      ['readlink', p(`${P}/${U1}/iommu_group`)],
    ]);
    t.equal(r[1]!.ok, 37);
    t.equal(r[3]!.errno, undefined, 'remove exists when the write returns');
    t.equal(r[4]!.errno, undefined, 'mdev_type too');
    t.equal(r[5]!.errno, undefined, 'mdev_attr_groups too');
    t.equal(r[6]!.ok, '../../../../../bus/mdev/drivers/vfio_mdev');
    const group = (r[7]!.ok as string).split('/').pop()!;
    t.same(await one(['listdir', p(`kernel/iommu_groups/${group}`)]), ['devices']);
    t.equal(await link(`bus/mdev/drivers/vfio_mdev/${U1}`), `../../../../${P}/${U1}`);
    t.equal(await readOnce(p(`${P}/${U1}/uevent`)), 'DRIVER=vfio_mdev\n');
  });

  t.test('a vendor can refuse a remove: EBUSY, and remove comes back', async t => {
    t.equal(await writeOnce(p(`${P}/${U1}/vendor/knob`), 'busy\n'), 5);
    t.equal(await writeOnce(p(`${P}/${U1}/remove`), '1\n'), 'EBUSY');
    t.same(await one(['lstat', p(`${P}/${U1}/remove`)]).then(r => (r as { mode: number }).mode), 0o100200, 'remove re-created');
    t.equal(await link(`${P}/${U1}/mdev_type`), '../mdev_supported_types/mtest-a');
    t.equal(await writeOnce(p(`${P}/${U1}/vendor/knob`), 'idle\n'), 5);
    t.equal(await writeOnce(p(`${P}/${U1}/remove`), '1\n'), 2);
    t.same(await one(['lstat', p(`${P}/${U1}`)]), { errno: 'ENOENT' });
  });

  t.test('no core capacity counter in 4.10', async t => {
    for (const u of [U1, U2, '83b8f4f2-509f-382f-3c1e-e6bfe0fa1003', '83b8f4f2-509f-382f-3c1e-e6bfe0fa1004']) {
      t.equal(await writeOnce(p(`${TB}/create`), u), 36, u);
    }
    t.equal(await readOnce(p(`${TB}/available_instances`)), '0\n', 'never negative');
  });
});

t.test("legacy profile, no --driver: 4.10's samples, which were mtty alone", async t => {
  const d = await startDaemon(t, { command: mdevfsMount('--profile', 'legacy') });
  t.match(d.stdout, /\(profile legacy, 1 parent\)/);
  t.same(await one(['listdir', d.p('class/mdev_bus')]), ['mtty']);
  const modern = await startDaemon(t, { command: mdevfsMount() });
  t.match(modern.stdout, /\(profile modern, 3 parents\)/, "today's kernel: mtty, mdpy and mbochs");
});
