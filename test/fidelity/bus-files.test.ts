// The bus and driver files of drivers/base/bus.c, against this machine's own
// /sys (a bus with drivers: platform) and through mdevfs in both profiles:
// the modes of bus/<bus>/{drivers_autoprobe,drivers_probe,uevent} and of a
// driver's bind/unbind/uevent (bus_add_attrs, driver_create_file), the
// autoprobe value, and the writes that fail: an unknown name is ENODEV for
// drivers_probe, bind and unbind (bus_find_device_by_name), a malformed
// uevent write EINVAL today (kobject_synth_uevent) and accepted by 4.10's
// bus_uevent_store / driver uevent_store, which only looked for an action word.
// Nothing written to the host's /sys can succeed. A driver's `module` link is
// left out: docs/abi.md#where-mdevfs-differs.
import t from 'tap';
import { readdirSync, statfsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { mdevfsMount, startDaemon } from '../helpers/daemon.js';
import { one, readOnce, writeOnce } from '../helpers/sys.js';

const NOBODY = 'mdevfs-no-such-device';

async function mode(p: string): Promise<string> {
  const st = (await one(['lstat', p])) as { mode: number };
  return (st.mode & 0o7777).toString(8);
}

async function busProbe(bus: string, driver: string): Promise<unknown> {
  const drv = path.join(bus, 'drivers', driver);
  return {
    modes: {
      drivers_autoprobe: await mode(path.join(bus, 'drivers_autoprobe')),
      drivers_probe: await mode(path.join(bus, 'drivers_probe')),
      uevent: await mode(path.join(bus, 'uevent')),
      bind: await mode(path.join(drv, 'bind')),
      unbind: await mode(path.join(drv, 'unbind')),
      'driver uevent': await mode(path.join(drv, 'uevent')),
    },
    drivers_autoprobe: await readOnce(path.join(bus, 'drivers_autoprobe')),
    'read drivers_probe': await readOnce(path.join(bus, 'drivers_probe')),
    'read bind': await readOnce(path.join(drv, 'bind')),
    'drivers_probe unknown': await writeOnce(path.join(bus, 'drivers_probe'), `${NOBODY}\n`),
    'bind unknown': await writeOnce(path.join(drv, 'bind'), `${NOBODY}\n`),
    'unbind unknown': await writeOnce(path.join(drv, 'unbind'), `${NOBODY}\n`),
    'bus uevent bogus': await writeOnce(path.join(bus, 'uevent'), 'bogus'),
    'driver uevent bogus': await writeOnce(path.join(drv, 'uevent'), 'bogus'),
  };
}

const want = (uevent: string | number, driverUevent: string | number) => ({
  modes: { drivers_autoprobe: '644', drivers_probe: '200', uevent: '200', bind: '200', unbind: '200', 'driver uevent': '200' },
  drivers_autoprobe: '1\n',
  'read drivers_probe': { errno: 'EACCES' },
  'read bind': { errno: 'EACCES' },
  'drivers_probe unknown': 'ENODEV',
  'bind unknown': 'ENODEV',
  'unbind unknown': 'ENODEV',
  'bus uevent bogus': uevent,
  'driver uevent bogus': driverUevent,
});

const realSysfs = (() => {
  try {
    return statfsSync('/sys').type === 0x62656572 && readdirSync('/sys/bus/platform/drivers').length > 0;
  } catch {
    return false;
  }
})();

t.test(
  'the kernel answers so (this machine: reads, and writes that fail)',
  { skip: realSysfs ? false : 'no sysfs platform bus here' },
  async t => {
    t.comment(`checked on Linux ${os.release()}`);
    const driver = readdirSync('/sys/bus/platform/drivers').sort()[0]!;
    t.same(await busProbe('/sys/bus/platform', driver), want('EINVAL', 'EINVAL'), `bus/platform, driver ${driver}`);
  },
);

for (const profile of ['modern', 'legacy'] as const) {
  t.test(`${profile}: bus/mdev answers the same`, async t => {
    const d = await startDaemon(t, { command: mdevfsMount('--profile', profile) });
    const modern = profile === 'modern';
    t.same(await busProbe(d.p('bus/mdev'), modern ? 'mtty' : 'vfio_mdev'), modern ? want('EINVAL', 'EINVAL') : want(5, 5));
  });
}
