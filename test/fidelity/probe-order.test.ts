// What a device shows while its driver's probe runs, in both profiles
// (drivers/base/dd.c really_probe): driver_sysfs_add() first, so `driver`
// is there; today's vendor probe (the plugin's create) ends in
// vfio_register_emulated_iommu_dev(), which makes the VFIO group char device
// and vfio-dev/vfio<k>, and really_probe() adds the driver's dev_groups after
// it, so neither is there yet. 4.10's vfio_mdev probe made the group char
// device before the vendor's create (mdev_device_create at v4.10), and the
// vendor's mdev_attr_groups came after it. The create is held by the fixture.
import t from 'tap';
import path from 'node:path';
import { FIXTURES, mdevfsMount, startDaemon } from '../helpers/daemon.js';
import { one, writeOnce } from '../helpers/sys.js';
import { waitFor } from '../helpers/util.js';

const HELD = path.join(FIXTURES, 'held-create-plugin.ts');
const U = 'b1e2d3c4-0000-4000-8000-00000000f001';
const TYPE = 'class/mdev_bus/mheld/mdev_supported_types/mheld-1';

for (const profile of ['modern', 'legacy']) {
  t.test(`${profile}: the tree while the vendor's create runs`, async t => {
    const d = await startDaemon(t, { command: mdevfsMount('--profile', profile, '--driver', HELD) });
    const modern = profile === 'modern';
    const dev = d.p('devices/virtual/mheld/mheld', U);
    const creating = writeOnce(d.p(TYPE, 'create'), U);
    const during = await waitFor(async () => {
      const names = await one(['listdir', dev]);
      return Array.isArray(names) && names.includes('driver') ? (names as string[]) : undefined;
    }, 10_000);
    t.same(
      during,
      modern
        ? ['driver', 'iommu_group', 'power', 'remove', 'subsystem', 'uevent']
        : ['driver', 'iommu_group', 'power', 'subsystem', 'uevent'],
      'driver attach, before the probe is over: no VFIO objects (modern), no vendor files, no type link',
    );
    t.equal(!('errno' in ((await one(['lstat', d.p('devices/virtual/vfio/0')])) as object)), !modern, 'the group char device: 4.10 only');
    t.equal(await writeOnce(d.p(TYPE, 'release'), '1'), 1);
    t.equal(await creating, 36);
    t.same(await one(['listdir', dev]), [
      'driver',
      'iommu_group',
      'mdev_type',
      'power',
      'remove',
      'subsystem',
      'uevent',
      'vendor_file',
      ...(modern ? ['vfio-dev'] : []),
    ]);
    t.match(await one(['lstat', d.p('devices/virtual/vfio/0/dev')]), { mode: 0o100444 });
  });
}
