// Writes to `uevent` files through a real mount: today's kernel sends the
// event they ask for (kobject_synth_uevent: SYNTH_UUID, SYNTH_ARG_*, then the
// object's own variables) or fails with EINVAL; 4.10's uevent_store accepted
// every write and sent an event only for an exact action word.
import t from 'tap';
import os from 'node:os';
import path from 'node:path';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { mdevfsMount, startDaemon } from '../helpers/daemon.js';
import { writeOnce } from '../helpers/sys.js';

const U = 'b1e2d3c4-0000-4000-8000-00000000c001';
const S = '0bd1d5a5-1111-4222-8333-444455556666';
const MTTY = 'devices/virtual/mtty/mtty';

async function eventsAfter(file: string, n: number): Promise<Array<Record<string, string | number>>> {
  const text = await readFile(file, 'utf8');
  return text
    .split('\n')
    .filter(Boolean)
    .map(l => JSON.parse(l) as Record<string, string | number>)
    .slice(n);
}

async function count(file: string): Promise<number> {
  return (await eventsAfter(file, 0)).length;
}

const strip = (e: Record<string, string | number>) => Object.fromEntries(Object.entries(e).filter(([k]) => k !== 'SEQNUM'));

t.test('today: synthetic uevents, and EINVAL for what the kernel refuses', async t => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mdevfs-uevent-writes-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const log = path.join(dir, 'uevents.jsonl');
  const d = await startDaemon(t, { command: mdevfsMount('--uevents', log) });
  t.equal(await writeOnce(d.p(MTTY, 'mdev_supported_types/mtty-1/create'), U), 36);
  const dev = d.p(MTTY, U);

  let n = await count(log);
  t.equal(await writeOnce(path.join(dev, 'uevent'), 'change\n'), 7);
  const [change] = await eventsAfter(log, n);
  t.same(strip(change!), { ACTION: 'change', DEVPATH: `/${MTTY}/${U}`, SUBSYSTEM: 'mdev', SYNTH_UUID: '0', DRIVER: 'mtty' });
  t.same(Object.keys(change!), ['ACTION', 'DEVPATH', 'SUBSYSTEM', 'SYNTH_UUID', 'DRIVER', 'SEQNUM'], 'kobject_uevent_env order');

  n = await count(log);
  t.equal(await writeOnce(path.join(dev, 'uevent'), `add ${S} MODE=1 why=test\n`), 57);
  t.same(strip((await eventsAfter(log, n))[0]!), {
    ACTION: 'add',
    DEVPATH: `/${MTTY}/${U}`,
    SUBSYSTEM: 'mdev',
    SYNTH_UUID: S,
    SYNTH_ARG_MODE: '1',
    SYNTH_ARG_why: 'test',
    DRIVER: 'mtty',
  });

  n = await count(log);
  for (const bad of ['chang', 'add x', `add ${S} A`, `add ${S} A=1 `, `add ${S} A-B=1`, '\n']) {
    t.equal(await writeOnce(path.join(dev, 'uevent'), bad), 'EINVAL', JSON.stringify(bad));
  }
  t.same(await eventsAfter(log, n), [], 'a refused write sends nothing');

  n = await count(log);
  t.equal(await writeOnce(d.p('devices/virtual/vfio/0/uevent'), 'change'), 6);
  t.equal(await writeOnce(d.p('bus/mdev/uevent'), 'add'), 3);
  t.equal(await writeOnce(d.p('bus/mdev/drivers/mtty/uevent'), 'add'), 3);
  t.equal(await writeOnce(d.p(MTTY, 'uevent'), 'change'), 6);
  t.same((await eventsAfter(log, n)).map(strip), [
    {
      ACTION: 'change',
      DEVPATH: '/devices/virtual/vfio/0',
      SUBSYSTEM: 'vfio',
      SYNTH_UUID: '0',
      MAJOR: '511',
      MINOR: '0',
      DEVNAME: 'vfio/0',
    },
    { ACTION: 'add', DEVPATH: '/bus/mdev', SUBSYSTEM: 'bus', SYNTH_UUID: '0' },
    { ACTION: 'add', DEVPATH: '/bus/mdev/drivers/mtty', SUBSYSTEM: 'drivers', SYNTH_UUID: '0' },
    { ACTION: 'change', DEVPATH: `/${MTTY}`, SUBSYSTEM: 'mtty', SYNTH_UUID: '0' },
  ]);
});

t.test('4.10: every write succeeds; only an exact action word sends an event', async t => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mdevfs-uevent-writes-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const log = path.join(dir, 'uevents.jsonl');
  const d = await startDaemon(t, { command: mdevfsMount('--profile', 'legacy', '--uevents', log) });
  t.equal(await writeOnce(d.p(MTTY, 'mdev_supported_types/mtty-1/create'), U), 36);
  const file = d.p(MTTY, U, 'uevent');
  const n = await count(log);
  for (const ignored of ['bind', 'unbind', `add ${S}`, 'bogus\n']) t.equal(await writeOnce(file, ignored), ignored.length, ignored);
  t.equal(await writeOnce(file, 'change\n'), 7);
  t.same((await eventsAfter(log, n)).map(strip), [{ ACTION: 'change', DEVPATH: `/${MTTY}/${U}`, SUBSYSTEM: 'mdev', DRIVER: 'vfio_mdev' }]);
});

t.test("a vendor's own uevent file (a PCI parent): its variables, the driver core's write", async t => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mdevfs-uevent-pci-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const log = path.join(dir, 'uevents.jsonl');
  const d = await startDaemon(t, { command: mdevfsMount('--driver', 'examples/nvidia-vgpu.ts', '--uevents', log) });
  const file = d.p('bus/pci/devices/0000:3b:00.0/uevent');
  t.equal(await writeOnce(file, 'bogus'), 'EINVAL');
  const n = await count(log);
  t.equal(await writeOnce(file, 'change\n'), 7);
  const [ev] = await eventsAfter(log, n);
  t.match(ev, {
    ACTION: 'change',
    DEVPATH: '/devices/pci0000:3a/0000:3a:00.0/0000:3b:00.0',
    SUBSYSTEM: 'pci',
    SYNTH_UUID: '0',
    DRIVER: 'nvidia',
    PCI_SLOT_NAME: '0000:3b:00.0',
  });
});
