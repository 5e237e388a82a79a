// Driver binding through sysfs, as drivers/base/bus.c answers it for the mdev
// bus, in both profiles. Today's mdev bus matches no driver
// (drivers/vfio/mdev/mdev_driver.c mdev_match returns 0): `bind` is ENODEV,
// `drivers_probe` binds nothing, and `unbind` detaches for good (the vendor's
// remove runs once; the device stays and can still be removed). 4.10's bus
// had no match function: vfio_mdev can be unbound and bound again, and
// drivers_autoprobe decides whether a new device is probed at all.
import t from 'tap';
import path from 'node:path';
import os from 'node:os';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { mdevfsMount, startDaemon } from '../helpers/daemon.js';
import { one, readOnce, writeOnce } from '../helpers/sys.js';

const U = 'b1e2d3c4-0000-4000-8000-00000000b001';
const U2 = 'b1e2d3c4-0000-4000-8000-00000000b002';
const MTTY = 'devices/virtual/mtty/mtty';
const TYPE = `${MTTY}/mdev_supported_types/mtty-1`;

async function events(file: string): Promise<string[]> {
  const text = await readFile(file, 'utf8');
  return text
    .split('\n')
    .filter(Boolean)
    .map(l => JSON.parse(l) as Record<string, string>)
    .map(e => `${e.ACTION} ${e.DEVPATH}`);
}

const exists = async (p: string) => !('errno' in ((await one(['lstat', p])) as object));

t.test('modern: unbind detaches for good; bind and drivers_probe never attach', async t => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mdevfs-binding-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const log = path.join(dir, 'uevents.jsonl');
  const d = await startDaemon(t, { command: mdevfsMount('--uevents', log) });
  const dev = d.p(MTTY, U);
  const before = await readOnce(d.p(TYPE, 'available_instances'));
  t.equal(await writeOnce(d.p(TYPE, 'create'), U), 36);
  t.equal(await writeOnce(d.p('bus/mdev/drivers/mtty/bind'), `${U}\n`), 'ENODEV', 'bind of a bound device');
  t.equal(await writeOnce(d.p('bus/mdev/drivers/mtty/unbind'), U.toUpperCase()), 'ENODEV', 'names match exactly');
  t.equal(await writeOnce(d.p('bus/mdev/drivers/mtty/unbind'), 'nope\n'), 'ENODEV');

  const seen = (await events(log)).length;
  t.equal(await writeOnce(d.p('bus/mdev/drivers/mtty/unbind'), `${U}\n`), 37, 'unbind');
  t.ok(await exists(dev), 'the device stays');
  for (const gone of ['driver', 'iommu_group', 'vfio-dev']) t.notOk(await exists(path.join(dev, gone)), `${gone} is gone`);
  t.notOk(await exists(d.p('bus/mdev/drivers/mtty', U)), 'the driver no longer lists it');
  t.ok(await exists(path.join(dev, 'mdev_type')), 'the type link stays');
  t.ok(await exists(path.join(dev, 'remove')), 'remove stays');
  t.equal(await readOnce(path.join(dev, 'uevent')), '', 'no DRIVER any more');
  t.same(
    (await events(log)).slice(seen),
    [`remove /${MTTY}/${U}/vfio-dev/vfio0`, 'remove /devices/virtual/vfio/0', `unbind /${MTTY}/${U}`],
    'the unbind uevents, in kernel order',
  );
  t.equal(await readOnce(d.p(TYPE, 'available_instances')), before, "mtty's remove gave its ports back (mtty_remove)");

  t.equal(await writeOnce(d.p('bus/mdev/drivers/mtty/bind'), U), 'ENODEV', 'mdev_match refuses every driver');
  t.equal(await writeOnce(d.p('bus/mdev/drivers_probe'), U), 36, 'drivers_probe succeeds');
  t.notOk(await exists(path.join(dev, 'driver')), 'and binds nothing');
  t.equal(await writeOnce(d.p('bus/mdev/drivers/mtty/unbind'), U), 'ENODEV', 'no longer bound');

  t.equal(await writeOnce(path.join(dev, 'remove'), '1'), 1, 'an unbound device can be removed');
  t.notOk(await exists(dev));
  t.equal(await readOnce(d.p(TYPE, 'available_instances')), before, 'the vendor remove ran once, not again at removal');
});

t.test('legacy: vfio_mdev can be unbound, bound and probed again; autoprobe decides at create', async t => {
  const d = await startDaemon(t, { command: mdevfsMount('--profile', 'legacy') });
  const dev = d.p(MTTY, U);
  const drv = 'bus/mdev/drivers/vfio_mdev';
  t.equal(await writeOnce(d.p(TYPE, 'create'), U), 36);
  t.equal(await one(['readlink', path.join(dev, 'driver')]), '../../../../../bus/mdev/drivers/vfio_mdev');
  t.equal(await writeOnce(d.p(drv, 'bind'), U), 'ENODEV', '4.10 bind_store: only an unbound device');

  t.equal(await writeOnce(d.p(drv, 'unbind'), U), 36);
  t.notOk(await exists(path.join(dev, 'driver')), 'unbound');
  t.notOk(await exists(path.join(dev, 'iommu_group')), 'mdev_detach_iommu');
  t.notOk(await exists(d.p('devices/virtual/vfio/0')), 'vfio_del_group_dev');
  t.ok(await exists(path.join(dev, 'remove')), 'the device stays, removable');

  t.equal(await writeOnce(d.p(drv, 'bind'), U), 36, 'bound again');
  t.ok(await exists(path.join(dev, 'driver')));
  t.ok(await exists(path.join(dev, 'iommu_group')));
  t.ok(await exists(d.p('devices/virtual/vfio/0/dev')));

  t.equal(await writeOnce(d.p(drv, 'unbind'), U), 36);
  t.equal(await writeOnce(d.p('bus/mdev/drivers_probe'), U), 36);
  t.ok(await exists(path.join(dev, 'driver')), 'drivers_probe binds vfio_mdev');

  t.equal(await writeOnce(d.p('bus/mdev/drivers_autoprobe'), '0'), 1);
  t.equal(await readOnce(d.p('bus/mdev/drivers_autoprobe')), '0\n');
  t.equal(await writeOnce(d.p(TYPE, 'create'), U2), 36);
  t.notOk(await exists(d.p(MTTY, U2, 'driver')), 'no autoprobe: created unbound');
  t.equal(await writeOnce(d.p('bus/mdev/drivers_probe'), U2), 36);
  t.ok(await exists(d.p(MTTY, U2, 'driver')), 'probed on request');
  for (const u of [U, U2]) t.equal(await writeOnce(d.p(MTTY, u, 'remove'), '1'), 1);
});
