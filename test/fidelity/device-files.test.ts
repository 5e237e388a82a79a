// The files the driver core gives every device mdevfs serves, point by point
// against drivers/base/core.c device_add() (today's and v4.10), in both
// profiles: exactly `uevent`, `power/`, `subsystem`, and `dev` plus a
// /sys/dev/char/<major>:<minor> link for a device with a device number
// (device_create_sys_dev_entry); never `online` (the mdev bus has no
// online/offline), `removable` (no dev_removable_is_valid), `waiting_for_supplier`
// (no fwnode), `driver_override` (mdev_bus_type has none) or device-link
// entries. power/ is drivers/base/power/sysfs.c for a device whose runtime PM
// is never enabled; `control` compares with sysfs_streq() today and looks
// only before the first newline in 4.10 (control_store). Names written to
// bind/unbind/drivers_probe match as bus_find_device_by_name() matches:
// sysfs_streq(), so the name ends at a NUL or one newline.
//
// The generic shapes are checked against this machine's real /sys as well
// (reads, and writes that fail), first on Linux 6.18.44: a class char device
// without a parent and without DEVMODE (misc/fuse, as the VFIO group device)
// and the power/ of a virtual device (net/lo).
import t from 'tap';
import { statfsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { mdevfsMount, startDaemon } from '../helpers/daemon.js';
import { one, readOnce, sys, writeOnce, type Step } from '../helpers/sys.js';

const U = 'b1e2d3c4-0000-4000-8000-00000000e001';
const MTTY = 'devices/virtual/mtty/mtty';

/** Each entry of `dir`: its mode (octal) and, for a link, its target. */
async function entries(dir: string): Promise<Record<string, string>> {
  const names = (await one(['listdir', dir])) as string[];
  const st = await sys(names.map(n => ['lstat', path.join(dir, n)] as Step));
  const out: Record<string, string> = {};
  for (const [i, n] of names.entries()) {
    const mode = (st[i]!.ok as { mode: number }).mode;
    out[n] = (mode & 0o170000) === 0o120000 ? `-> ${(await one(['readlink', path.join(dir, n)])) as string}` : (mode & 0o7777).toString(8);
  }
  return out;
}

/** What power/ answers: modes, reads, and writes that fail (or change nothing). */
async function powerProbe(power: string): Promise<unknown> {
  return {
    entries: await entries(power),
    control: await readOnce(path.join(power, 'control')),
    runtime_status: await readOnce(path.join(power, 'runtime_status')),
    runtime_active_time: await readOnce(path.join(power, 'runtime_active_time')),
    runtime_suspended_time: await readOnce(path.join(power, 'runtime_suspended_time')),
    autosuspend_delay_ms: await readOnce(path.join(power, 'autosuspend_delay_ms')),
    'write autosuspend_delay_ms': await writeOnce(path.join(power, 'autosuspend_delay_ms'), '0'),
    'write control bogus': await writeOnce(path.join(power, 'control'), 'bogus\n'),
    'write control empty line': await writeOnce(path.join(power, 'control'), '\n'),
    'open runtime_status for writing': await writeOnce(path.join(power, 'runtime_status'), 'x'),
  };
}

const KERNEL_POWER = {
  entries: {
    autosuspend_delay_ms: '644',
    control: '644',
    runtime_active_time: '444',
    runtime_status: '444',
    runtime_suspended_time: '444',
  },
  control: 'auto\n',
  runtime_status: 'unsupported\n',
  runtime_active_time: '0\n',
  runtime_suspended_time: '0\n',
  autosuspend_delay_ms: { errno: 'EIO' },
  'write autosuspend_delay_ms': 'EIO',
  'write control bogus': 'EINVAL',
  'write control empty line': 'EINVAL',
  'open runtime_status for writing': 'EACCES',
};

/** A class char device: its files, its uevent and its /sys/dev/char link. */
async function charDevProbe(root: string, devpath: string, devt: string): Promise<unknown> {
  const dir = path.join(root, devpath);
  const e = await entries(dir);
  return {
    names: Object.keys(e).sort(),
    dev: [e.dev, await readOnce(path.join(dir, 'dev'))],
    uevent: e.uevent,
    keys: ((await readOnce(path.join(dir, 'uevent'))) as string)
      .split('\n')
      .filter(Boolean)
      .map(l => l.split('=')[0]),
    devChar: await one(['readlink', path.join(root, 'dev/char', devt)]),
  };
}

const realSysfs = (() => {
  try {
    return statfsSync('/sys').type === 0x62656572;
  } catch {
    return false;
  }
})();

t.test(
  'the kernel answers so (this machine: reads, and writes that fail)',
  { skip: realSysfs ? false : '/sys is not sysfs here' },
  async t => {
    t.comment(`checked on Linux ${os.release()}`);
    t.same(await powerProbe('/sys/devices/virtual/net/lo/power'), KERNEL_POWER, 'power/ of a virtual device');
    const fuse = '/sys/devices/virtual/misc/fuse';
    const devt = ((await readOnce(path.join(fuse, 'dev'))) as string).trim();
    t.same(await charDevProbe('/sys', 'devices/virtual/misc/fuse', devt), {
      names: ['dev', 'power', 'subsystem', 'uevent'],
      dev: ['444', `${devt}\n`],
      uevent: '644',
      keys: ['MAJOR', 'MINOR', 'DEVNAME'],
      devChar: '../../devices/virtual/misc/fuse',
    });
    t.equal(await writeOnce('/sys/devices/virtual/net/lo/uevent', 'bogus'), 'EINVAL', 'kobject_synth_uevent refuses, sends nothing');
  },
);

for (const profile of ['modern', 'legacy'] as const) {
  t.test(`${profile}: every device's driver-core files, as device_add makes them`, async t => {
    const d = await startDaemon(t, { command: mdevfsMount('--profile', profile) });
    const drv = profile === 'modern' ? 'mtty' : 'vfio_mdev';
    t.equal(await writeOnce(d.p(MTTY, 'mdev_supported_types/mtty-1/create'), U), 36);
    const dev = d.p(MTTY, U);

    // The mediated device: a bus device with no device number.
    const want: Record<string, string> = {
      driver: `-> ../../../../../bus/mdev/drivers/${drv}`,
      iommu_group: '-> ../../../../../kernel/iommu_groups/0',
      mdev_type: '-> ../mdev_supported_types/mtty-1',
      power: '755',
      remove: '200',
      subsystem: '-> ../../../../../bus/mdev',
      uevent: '644',
      vendor: '755',
    };
    if (profile === 'modern') want['vfio-dev'] = '755';
    t.same(await entries(dev), want, 'nothing more: no dev, online, removable, waiting_for_supplier, driver_override');
    t.equal(await readOnce(path.join(dev, 'uevent')), `DRIVER=${drv}\n`, 'dev_uevent: no DEVTYPE (mdev has no device_type), no MAJOR');

    // The parent: a class device without a device number (mtty_dev_init).
    const parent = await entries(d.p(MTTY));
    t.same(
      Object.keys(parent).filter(n => !['mdev_supported_types', U, 'mtty_dev'].includes(n)),
      ['power', 'subsystem', 'uevent'],
    );
    t.equal(parent.subsystem, '-> ../../../../class/mtty');
    t.equal(await readOnce(d.p(MTTY, 'uevent')), '', 'no driver, no device number');

    for (const power of [path.join(dev, 'power'), d.p(MTTY, 'power'), d.p('devices/virtual/vfio/0/power')]) {
      t.same(await powerProbe(power), KERNEL_POWER, path.relative(d.dir, power));
    }

    // The VFIO group char device (vfio_create_group): as misc/fuse on the host.
    t.same(await charDevProbe(d.dir, 'devices/virtual/vfio/0', '511:0'), {
      names: ['dev', 'power', 'subsystem', 'uevent'],
      dev: ['444', '511:0\n'],
      uevent: '644',
      keys: ['MAJOR', 'MINOR', 'DEVNAME'],
      devChar: '../../devices/virtual/vfio/0',
    });
    if (profile === 'modern') {
      // vfio-dev/vfio0 (vfio_device_add): a class device with a parent, so also `device`.
      const vd = await charDevProbe(d.dir, `${MTTY}/${U}/vfio-dev/vfio0`, '510:0');
      t.same(vd, {
        names: ['dev', 'device', 'power', 'subsystem', 'uevent'],
        dev: ['444', '510:0\n'],
        uevent: '644',
        keys: ['MAJOR', 'MINOR', 'DEVNAME'],
        devChar: `../../${MTTY}/${U}/vfio-dev/vfio0`,
      });
    } else {
      t.same(await one(['listdir', d.p('dev/char')]), ['511:0'], '4.10: no vfio-dev class');
    }

    // power/control: today sysfs_streq(), 4.10 the text before the first newline.
    const control = path.join(dev, 'power/control');
    t.equal(await writeOnce(control, 'on\nx'), profile === 'modern' ? 'EINVAL' : 4, '"on\\nx"');
    t.equal(await writeOnce(control, 'auto\0x'), profile === 'modern' ? 6 : 'EINVAL', '"auto\\0x"');
    t.equal(await writeOnce(control, 'on\n'), 3);
    t.equal(await readOnce(control), 'on\n', 'pm_runtime_forbid: control shows on');
    t.equal(await readOnce(path.join(dev, 'power/runtime_status')), 'unsupported\n', 'runtime PM stays disabled');

    // bus_find_device_by_name(): sysfs_streq(), so a NUL ends the name.
    t.equal(await writeOnce(d.p('bus/mdev/drivers_probe'), `${U}\0junk`), 41, 'drivers_probe finds the device');
    t.equal(await writeOnce(d.p('bus/mdev/drivers_probe'), `${U}\n\n`), 'ENODEV', 'one newline only');
    t.equal(await writeOnce(d.p(`bus/mdev/drivers/${drv}/unbind`), `${U}\n\0junk`), 42, 'unbind finds it too');
    t.same(await one(['lstat', path.join(dev, 'driver')]), { errno: 'ENOENT' });
    t.same(await one(['lstat', d.p('dev/char/511:0')]), { errno: 'ENOENT' }, 'the link goes with the device number');
    t.equal(await writeOnce(path.join(dev, 'remove'), '1'), 1);
  });
}
