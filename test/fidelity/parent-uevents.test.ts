// docs/abi.md#uevent-order (Parents): a parent's MDEV_STATE change uevent
// carries the parent's own dev_uevent variables (DRIVER, PCI_* and MODALIAS
// for a PCI parent, ST and MODALIAS for a subchannel...) after MDEV_STATE:
// the very lines its `uevent` file shows (uevent_show prints the same env
// the event gets).
import t from 'tap';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { mdevfsMount, startDaemon } from '../helpers/daemon.js';

async function events(file: string): Promise<Array<Record<string, string>>> {
  const text = await fsp.readFile(file, 'utf8');
  return text
    .split('\n')
    .filter(Boolean)
    .map(l => JSON.parse(l) as Record<string, string>);
}

t.test("registered/unregistered events carry the parent uevent file's variables", async t => {
  const tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'mdevfs-ue-'));
  t.teardown(() => fsp.rm(tmp, { recursive: true, force: true }));
  const ue = path.join(tmp, 'uevents.json');
  const d = await startDaemon(t, {
    command: mdevfsMount(
      '-d',
      'examples/samples.ts',
      '-d',
      'examples/nvidia-vgpu.ts',
      '-d',
      'examples/intel-gvtg.ts',
      '-d',
      'examples/vfio-ccw.ts',
      '-d',
      'examples/vfio-ap.ts',
      '--uevents',
      ue,
    ),
  });
  const registered = (await events(ue)).filter(e => e.MDEV_STATE === 'registered');
  t.equal(registered.length, 8, 'one per parent');
  // What each parent's uevent file says, read through the mount, before the stop.
  const fileVars = new Map<string, Array<[string, string]>>();
  for (const ev of registered) {
    const text = await fsp.readFile(d.p(ev.DEVPATH!.slice(1), 'uevent'), 'utf8');
    fileVars.set(
      ev.DEVPATH!,
      text
        .split('\n')
        .filter(Boolean)
        .map(l => {
          const i = l.indexOf('=');
          return [l.slice(0, i), l.slice(i + 1)] as [string, string];
        }),
    );
  }
  const expected = (ev: Record<string, string>, state: string) => ({
    keys: ['ACTION', 'DEVPATH', 'SUBSYSTEM', 'MDEV_STATE', ...fileVars.get(ev.DEVPATH!)!.map(([k]) => k), 'SEQNUM'],
    values: {
      ACTION: 'change',
      DEVPATH: ev.DEVPATH,
      SUBSYSTEM: ev.SUBSYSTEM,
      MDEV_STATE: state,
      ...Object.fromEntries(fileVars.get(ev.DEVPATH!)!),
      SEQNUM: ev.SEQNUM,
    },
  });
  for (const ev of registered) {
    const x = expected(ev, 'registered');
    t.same(Object.keys(ev), x.keys, `${ev.DEVPATH}: keys in kernel order`);
    t.same(ev, x.values, `${ev.DEVPATH}: values`);
  }
  const gpu = registered.find(e => e.DEVPATH === '/devices/pci0000:00/0000:00:02.0')!;
  t.equal(gpu.PCI_SLOT_NAME, '0000:00:02.0', "a PCI parent's event has PCI_SLOT_NAME");
  t.match(gpu.MODALIAS, /^pci:v00008086/, 'and MODALIAS');
  const mtty = registered.find(e => e.DEVPATH === '/devices/virtual/mtty/mtty')!;
  t.same(Object.keys(mtty), ['ACTION', 'DEVPATH', 'SUBSYSTEM', 'MDEV_STATE', 'SEQNUM'], 'a driverless class device adds nothing');

  t.same(await d.stop('SIGTERM'), { code: 0, signal: null });
  const unregistered = (await events(ue)).filter(e => e.MDEV_STATE === 'unregistered');
  t.equal(unregistered.length, 8, 'one per parent at shutdown');
  for (const ev of unregistered) {
    const x = expected(ev, 'unregistered');
    t.same(Object.keys(ev), x.keys, `${ev.DEVPATH}: unregistered keys`);
    t.same(ev, x.values, `${ev.DEVPATH}: unregistered values`);
  }
});
