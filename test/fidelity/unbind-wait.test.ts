// What a device shows while its driver's remove waits for the last close of
// its VFIO device, in both profiles. __device_release_driver()
// (drivers/base/dd.c) takes the `driver` links (driver_sysfs_remove) and the
// driver's attribute groups (device_remove) before it calls the driver's
// remove; today's vfio_unregister_group_dev() (drivers/vfio/vfio_main.c)
// deletes vfio-dev/vfio<k> (vfio_device_del) before it waits, and the group
// char device and the IOMMU group after. `uevent` still names the driver:
// dev_uevent() (drivers/base/core.c) reads dev->driver without the device
// lock, and dev->driver is cleared only after the remove. 4.10's vfio_mdev
// (vfio_del_group_dev) waited the same way; its vendor files belonged to the
// mdev core (mdev_attr_groups) and stay. The device is held open through
// /dev/vfio/<N> (--vfio-dir) by a python3 child.
import t, { type Test } from 'tap';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { makeMountDir, mdevfsMount, startDaemon, type Daemon } from '../helpers/daemon.js';
import { startHolder, type Holder } from '../helpers/holder.js';
import { one, readOnce, writeOnce } from '../helpers/sys.js';
import { scratchDir, sleep, waitFor } from '../helpers/util.js';

const U = 'b1e2d3c4-0000-4000-8000-00000000d001';
const MTTY = 'devices/virtual/mtty/mtty';
const TYPE = `${MTTY}/mdev_supported_types/mtty-1`;

const present = async (p: string) => !('errno' in ((await one(['lstat', p])) as object));

async function events(file: string): Promise<string[]> {
  const text = await fsp.readFile(file, 'utf8');
  return text
    .split('\n')
    .filter(Boolean)
    .map(l => JSON.parse(l) as Record<string, string>)
    .map(e => `${e.ACTION} ${e.DEVPATH}`);
}

/** Open the device through its group file: the first read opens it (VFIO_GROUP_GET_DEVICE_FD). */
async function holdOpen(t: Test, vdir: string): Promise<Holder> {
  const h = startHolder(t);
  let r = await h.do(['open', path.join(vdir, '0'), 'O_RDWR']);
  for (let i = 0; i < 100 && r.errno === 'EBUSY'; i++) {
    await sleep(50);
    r = await h.do(['open', path.join(vdir, '0'), 'O_RDWR']);
  }
  t.same(r, { ok: 0 }, 'the group file is open');
  t.notOk((await h.do(['pread', 0, 4, 7 * 2 ** 40])).errno, 'and the device through it');
  return h;
}

async function mountWith(t: Test, profile: string): Promise<{ d: Daemon; vdir: string; log: string }> {
  const vdir = await makeMountDir(t);
  const log = path.join(await scratchDir(t, 'mdevfs-unbind-wait-'), 'uevents.jsonl');
  const d = await startDaemon(t, { command: mdevfsMount('--profile', profile, '--vfio-dir', vdir, '--uevents', log) });
  return { d, vdir, log };
}

/** Start a write that will wait; resolve once `driver` has gone (the release has begun). */
async function startWaitingWrite(
  d: Daemon,
  file: string,
  data: string,
): Promise<{ result: Promise<number | string>; settled: () => boolean }> {
  let done = false;
  const result = writeOnce(file, data).finally(() => {
    done = true;
  });
  const gone = await waitFor(async () => !(await present(d.p(MTTY, U, 'driver'))), 10_000);
  if (!gone) throw new Error('the driver link never went');
  return { result, settled: () => done };
}

t.test('modern: unbind through sysfs while the device is open', async t => {
  const { d, vdir, log } = await mountWith(t, 'modern');
  const dev = d.p(MTTY, U);
  t.equal(await writeOnce(d.p(TYPE, 'create'), U), 36);
  const h = await holdOpen(t, vdir);
  const seen = (await events(log)).length;

  const w = await startWaitingWrite(d, d.p('bus/mdev/drivers/mtty/unbind'), U);
  t.notOk(w.settled(), 'unbind waits for the last close');
  t.notOk(await present(d.p('bus/mdev/drivers/mtty', U)), "driver_sysfs_remove: the driver's link to the device is gone too");
  t.notOk(await present(path.join(dev, 'vendor')), "device_remove: the driver's dev_groups are gone");
  t.notOk(await present(path.join(dev, 'vfio-dev')), 'vfio_device_del: vfio-dev/vfio0 is gone before the wait');
  t.notOk(await present(d.p('class/vfio-dev/vfio0')));
  t.ok(await present(path.join(dev, 'iommu_group')), 'the IOMMU group stays until after the wait');
  t.ok(await present(d.p('devices/virtual/vfio/0/dev')), 'so does the group char device');
  t.ok(await present(path.join(vdir, '0')), 'and its device file');
  t.equal(await readOnce(path.join(dev, 'uevent')), 'DRIVER=mtty\n', 'dev_uevent: dev->driver is still set');
  t.same((await events(log)).slice(seen), [`remove /${MTTY}/${U}/vfio-dev/vfio0`], "only vfio-dev's remove so far");
  t.same(await h.do(['open', path.join(vdir, '0'), 'O_RDWR']), { errno: 'EBUSY' }, 'the group stays claimed by the holder');

  t.same(await h.do(['close', 0]), { ok: 0 });
  t.equal(await w.result, 36, 'the last close lets the unbind finish');
  t.notOk(await present(path.join(dev, 'iommu_group')));
  t.notOk(await present(d.p('devices/virtual/vfio/0')));
  t.equal(await readOnce(path.join(dev, 'uevent')), '', 'no DRIVER any more');
  t.same(
    (await events(log)).slice(seen),
    [`remove /${MTTY}/${U}/vfio-dev/vfio0`, 'remove /devices/virtual/vfio/0', `unbind /${MTTY}/${U}`],
    'the kernel order',
  );
  t.equal(await writeOnce(path.join(dev, 'remove'), '1'), 1);
});

// A remove reaches the driver's release inside device_del(), which has
// already taken uevent, power/, subsystem and bus/mdev/devices/<uuid>
// (dpm_sysfs_remove, device_remove_file, bus_remove_device); the directory
// itself goes last (kobject_del), after the wait.
for (const profile of ['modern', 'legacy']) {
  t.test(`${profile}: remove while the device is open`, async t => {
    const { d, vdir, log } = await mountWith(t, profile);
    const dev = d.p(MTTY, U);
    t.equal(await writeOnce(d.p(TYPE, 'create'), U), 36);
    const h = await holdOpen(t, vdir);
    const seen = (await events(log)).length;
    const w = await startWaitingWrite(d, path.join(dev, 'remove'), '1');
    t.notOk(w.settled(), 'remove waits for the last close');
    t.same(await one(['listdir', dev]), ['iommu_group'], 'only the IOMMU group link is left');
    t.notOk(await present(d.p('bus/mdev/devices', U)), 'bus_remove_device');
    t.equal(await writeOnce(d.p('bus/mdev/drivers_probe'), U), 'ENODEV', 'off the bus: bus_find_device_by_name finds nothing');
    t.notOk(await present(d.p('bus/mdev/drivers', profile === 'modern' ? 'mtty' : 'vfio_mdev', U)));
    t.ok(await present(d.p('devices/virtual/vfio/0/dev')), 'the group char device stays until after the wait');
    t.same(
      (await events(log)).slice(seen),
      profile === 'modern' ? [`remove /${MTTY}/${U}/vfio-dev/vfio0`] : [],
      'vfio_device_del before the wait (modern)',
    );
    t.same(await h.do(['close', 0]), { ok: 0 });
    t.equal(await w.result, 1);
    t.notOk(await present(dev));
    t.same(
      (await events(log)).slice(seen),
      profile === 'modern'
        ? [`remove /${MTTY}/${U}/vfio-dev/vfio0`, 'remove /devices/virtual/vfio/0', `unbind /${MTTY}/${U}`, `remove /${MTTY}/${U}`]
        : ['remove /devices/virtual/vfio/0', `remove /${MTTY}/${U}`],
    );
  });
}

t.test('legacy: unbind of vfio_mdev while the device is open', async t => {
  const { d, vdir, log } = await mountWith(t, 'legacy');
  const dev = d.p(MTTY, U);
  t.equal(await writeOnce(d.p(TYPE, 'create'), U), 36);
  const h = await holdOpen(t, vdir);
  const seen = (await events(log)).length;
  const w = await startWaitingWrite(d, d.p('bus/mdev/drivers/vfio_mdev/unbind'), U);
  t.notOk(w.settled(), 'unbind waits for the last close (vfio_del_group_dev)');
  t.notOk(await present(d.p('bus/mdev/drivers/vfio_mdev', U)), 'driver_sysfs_remove');
  t.ok(await present(path.join(dev, 'vendor/sample_mdev_dev')), "4.10: the vendor's files are the mdev core's, not the driver's");
  t.ok(await present(path.join(dev, 'iommu_group')), 'the IOMMU group stays until after the wait');
  t.ok(await present(d.p('devices/virtual/vfio/0/dev')), 'so does the group char device');
  t.equal(await readOnce(path.join(dev, 'uevent')), 'DRIVER=vfio_mdev\n');
  t.same((await events(log)).slice(seen), [], 'no uevent yet');
  t.same(await h.do(['close', 0]), { ok: 0 });
  t.equal(await w.result, 36);
  t.notOk(await present(path.join(dev, 'iommu_group')), 'mdev_detach_iommu after the wait');
  t.same((await events(log)).slice(seen), ['remove /devices/virtual/vfio/0'], '4.10 had no unbind uevent');
  t.equal(await writeOnce(path.join(dev, 'remove'), '1'), 1);
});
