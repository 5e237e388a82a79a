// The legacy (4.10, the 2016 design) profile through a real mount, against
// the kernel's sample drivers and Intel GVT-g: every difference from today's
// kernel (docs/abi.md#the-legacy-profile, #legacy-uevents), the uevent stream, and the device
// files (`--vfio-dir`), including GVT-g's EBUSY veto of a remove while its
// vGPU is open (opened through the group file by a first access).
import t from 'tap';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startDaemon, mdevfsMount, makeMountDir, isMounted, sh, REPO } from '../helpers/daemon.js';
import { one, readOnce, sys, writeOnce, type Step } from '../helpers/sys.js';
import { startHolder } from '../helpers/holder.js';
import { sleep } from '../helpers/util.js';

const SAMPLES = path.join(REPO, 'examples/samples.ts');
const GVTG = path.join(REPO, 'examples/intel-gvtg.ts');
const U = (n: number) => `83b8f4f2-509f-382f-3c1e-e6bfe0fa${n.toString(16).padStart(4, '0')}`;
const TYPES = (parent: string) => `class/mdev_bus/${parent}/mdev_supported_types`;
const GVT = '0000:00:02.0';

interface Ev {
  [k: string]: string;
}
async function events(file: string): Promise<Ev[]> {
  return (await fsp.readFile(file, 'utf8'))
    .split('\n')
    .filter(Boolean)
    .map(l => JSON.parse(l) as Ev);
}

t.test('legacy profile: samples and GVT-g', async t => {
  const vdir = await makeMountDir(t);
  const tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'mdevfs-uevents-'));
  t.teardown(() => fsp.rm(tmp, { recursive: true, force: true }));
  const ueFile = path.join(tmp, 'uevents.jsonl');
  const d = await startDaemon(t, {
    command: mdevfsMount('--profile', 'legacy', '--driver', SAMPLES, '--driver', GVTG, '--vfio-dir', vdir, '--uevents', ueFile),
  });
  const p = d.p;
  t.match(d.stdout, /\(profile legacy, 4 parents\)/);
  const create = (parent: string, type: string, uuid: string) => writeOnce(p(`${TYPES(parent)}/${type}/create`), uuid);
  const link = (rel: string) => one(['readlink', p(rel)]) as Promise<string>;
  const group = async (uuid: string) => path.basename(await link(`bus/mdev/devices/${uuid}/iommu_group`));
  const L = { mtty: U(1), mdpy: U(2), mbochs: U(3), gvt: U(4) };

  t.test('one generic bus driver, vfio_mdev, bound to every device', async t => {
    t.same(await one(['listdir', p('bus/mdev/drivers')]), ['vfio_mdev'], 'no vendor mdev drivers');
    t.equal(await create('mtty', 'mtty-2', L.mtty), 36);
    t.equal(await create('mdpy', 'mdpy-vga', L.mdpy), 36);
    t.equal(await create('mbochs', 'mbochs-small', L.mbochs), 36);
    t.equal(await create(GVT, 'i915-GVTg_V5_4', L.gvt), 36);
    for (const u of Object.values(L)) {
      t.equal(path.basename(await link(`bus/mdev/devices/${u}/driver`)), 'vfio_mdev', `${u}: driver`);
      t.equal(await readOnce(p(`bus/mdev/devices/${u}/uevent`)), 'DRIVER=vfio_mdev\n');
    }
    t.same(await one(['listdir', p('bus/mdev/drivers/vfio_mdev')]), ['bind', 'uevent', 'unbind', ...Object.values(L)].sort());
    t.equal(await link(`devices/virtual/mtty/mtty/${L.mtty}/driver`), '../../../../../bus/mdev/drivers/vfio_mdev');
    t.equal(await link(`devices/pci0000:00/${GVT}/${L.gvt}/driver`), '../../../../bus/mdev/drivers/vfio_mdev');
  });

  t.test("type directories: create, devices/ and exactly the vendor's attributes", async t => {
    t.same(await one(['listdir', p(`${TYPES('mtty')}/mtty-2`)]), ['available_instances', 'create', 'device_api', 'devices', 'name']);
    t.same(await one(['listdir', p(`${TYPES('mdpy')}/mdpy-vga`)]), [
      'available_instances',
      'create',
      'description',
      'device_api',
      'devices',
      'name',
    ]);
    t.same(
      await one(['listdir', p(`${TYPES(GVT)}/i915-GVTg_V5_4`)]),
      ['available_instances', 'create', 'description', 'device_api', 'devices'],
      'old GVT-g had no name file',
    );
    t.same(await one(['listdir', p(`${TYPES('mtty')}/mtty-2/devices`)]), [L.mtty]);
    t.match(await one(['lstat', p(`${TYPES('mtty')}/mtty-2/create`)]), { mode: 0o100200, size: 4096 });
  });

  t.test("the parent's dev_attr_groups (mtty_dev/sample_mtty_dev)", async t => {
    t.same(
      await one(['listdir', p('devices/virtual/mtty/mtty')]),
      [L.mtty, 'mdev_supported_types', 'mtty_dev', 'power', 'subsystem', 'uevent'].sort(),
    );
    t.equal(await readOnce(p('devices/virtual/mtty/mtty/mtty_dev/sample_mtty_dev')), 'This is phy device\n');
    t.equal(await readOnce(p(`bus/mdev/devices/${L.mtty}/vendor/sample_mdev_dev`)), `This is MDEV ${L.mtty}\n`, 'mdev_attr_groups');
  });

  t.test('IOMMU group directories hold only devices/', async t => {
    for (const u of Object.values(L)) {
      const g = await group(u);
      t.same(await one(['listdir', p(`kernel/iommu_groups/${g}`)]), ['devices'], `group ${g}: no name, type, reserved_regions`);
      t.same(await one(['listdir', p(`kernel/iommu_groups/${g}/devices`)]), [u]);
    }
    t.same(await one(['listdir', p('kernel/iommu_groups/1')]), ['devices'], "the iGPU's own group too");
  });

  t.test('no core capacity counter: only the vendors refuse', async t => {
    // 4.10's mtty never refused: 12 more dual-port devices make 26 ports of 24.
    const steps: Step[] = [];
    for (let i = 0; i < 12; i++) {
      steps.push(['open', p(`${TYPES('mtty')}/mtty-2/create`), 'O_WRONLY'], ['write', i, U(0x100 + i)], ['close', i]);
    }
    const r = await sys(steps);
    t.same(
      r.filter((_, i) => i % 3 === 1).map(x => x.ok),
      Array(12).fill(36),
      'all twelve created',
    );
    t.equal(await readOnce(p(`${TYPES('mtty')}/mtty-2/available_instances`)), '0\n', 'informational, never negative');
    t.equal(await readOnce(p(`${TYPES('mtty')}/mtty-1/available_instances`)), '0\n');
    // mdpy: its own count of 4 and ENOMEM, where today's core says EUSERS.
    for (const n of [0x201, 0x202, 0x203]) t.equal(await create('mdpy', 'mdpy-xga', U(n)), 36);
    t.equal(await readOnce(p(`${TYPES('mdpy')}/mdpy-hd/available_instances`)), '0\n');
    t.equal(await create('mdpy', 'mdpy-hd', U(0x204)), 'ENOMEM', "the vendor's errno, not EUSERS");
    t.same(await one(['lstat', p(`bus/mdev/devices/${U(0x204)}`)]), { errno: 'ENOENT' });
  });

  t.test("duplicate UUIDs: checked among the parent's children; on another parent device_register fails", async t => {
    const before = (await events(ueFile)).length;
    t.equal(await create('mtty', 'mtty-1', L.mtty), 'EEXIST', 'same parent, other type');
    t.equal(await create('mtty', 'mtty-1', L.mtty.toUpperCase()), 'EEXIST', 'compared as 16 bytes');
    t.equal(await create('mbochs', 'mbochs-small', L.mtty), 'EEXIST', 'another parent: /sys/bus/mdev/devices/<uuid> exists');
    t.equal((await events(ueFile)).length, before, 'neither got as far as an add uevent');
    t.equal(await link(`bus/mdev/devices/${L.mtty}`), `../../../devices/virtual/mtty/mtty/${L.mtty}`, 'the first device is intact');
  });

  t.test("device access: the parent's read/write through the device file", async t => {
    const h = startHolder(t);
    t.same(await h.do(['open', path.join(vdir, await group(L.mtty)), 'O_RDWR']), { ok: 0 });
    t.equal(((await h.do(['pread', 0, 12, 7 * 2 ** 40])).ok as Buffer).toString('hex'), '484353320100000210020007');
    t.same(await h.do(['pwrite', 0, 'z', 0]), { ok: 1 });
    t.equal(((await h.do(['pread', 0, 1, 0])).ok as Buffer).toString('latin1'), 'z', 'UART loopback');
    t.same(await h.do(['close', 0]), { ok: 0 });
  });

  t.test('GVT-g removes a vGPU whose group is only claimed: opening the group does not open the vGPU', async t => {
    const u = U(0x30);
    t.equal(await create(GVT, 'i915-GVTg_V5_4', u), 36);
    const g = await group(u);
    const h = startHolder(t);
    t.same(await h.do(['open', path.join(vdir, g), 'O_RDWR']), { ok: 0 });
    t.equal(await writeOnce(p(`bus/mdev/devices/${u}/remove`), '1'), 1, 'no veto: the vGPU is not open');
    t.same(await one(['lstat', p(`bus/mdev/devices/${u}`)]), { errno: 'ENOENT' }, 'the vGPU is gone');
    t.same(await one(['lstat', path.join(vdir, g)]), { errno: 'ENOENT' }, 'and its group file');
    t.same(await h.do(['pread', 0, 4, 7 * 2 ** 40]), { errno: 'ENODEV' }, 'the held group reaches no device');
    t.same(await h.do(['close', 0]), { ok: 0 });
  });

  t.test('GVT-g refuses to remove an open vGPU: EBUSY, and remove is back', async t => {
    const h = startHolder(t);
    const devDir = `devices/pci0000:00/${GVT}/${L.gvt}`;
    t.same(
      await h.do(['open', path.join(vdir, await group(L.gvt)), 'O_RDWR']),
      { ok: 0 },
      'the group is claimed; the vGPU is not open yet',
    );
    t.same(
      await h.do(['pread', 0, 4, 7 * 2 ** 40]),
      { errno: 'EINVAL' },
      "the first access opens the vGPU (GET_DEVICE_FD's stand-in); GVT-g has no read op here: EINVAL, as vfio_mdev's read",
    );
    const avail = await readOnce(p(`${TYPES(GVT)}/i915-GVTg_V5_8/available_instances`));
    const r = await sh(`echo 1 > ${p(devDir, 'remove')}`);
    t.equal(r.code, 1);
    t.match(r.stderr, /write error: Device or resource busy/);
    t.equal(await writeOnce(p(devDir, 'remove'), '1'), 'EBUSY', 'and again');
    t.match(await one(['lstat', p(devDir, 'remove')]), { mode: 0o100200 }, 'remove re-created');
    t.equal(await link(`${devDir}/mdev_type`), '../mdev_supported_types/i915-GVTg_V5_4', 'mdev_type back');
    t.same(await one(['listdir', p(`${TYPES(GVT)}/i915-GVTg_V5_4/devices`)]), [L.gvt], 'devices/<uuid> back');
    t.equal(await readOnce(p(`${devDir}/intel_vgpu/vgpu_id`)), '1\n');
    t.equal(await readOnce(p(`${TYPES(GVT)}/i915-GVTg_V5_8/available_instances`)), avail, 'nothing was released');
    t.notOk(
      (await events(ueFile)).some(e => e.ACTION === 'remove' && e.DEVPATH!.endsWith(L.gvt)),
      'no remove uevent',
    );

    t.same(await h.do(['close', 0]), { ok: 0 });
    // RELEASE reaches the daemon asynchronously to close(2).
    let res: number | string = 'EBUSY';
    for (let i = 0; i < 20 && res === 'EBUSY'; i++) {
      res = await writeOnce(p(devDir, 'remove'), '1');
      if (res === 'EBUSY') await sleep(50);
    }
    t.equal(res, 1, 'closed: the remove goes through');
    t.same(await one(['lstat', p(devDir)]), { errno: 'ENOENT' });
  });

  t.test('only add and remove uevents, in kernel key order', async t => {
    const evs = await events(ueFile);
    t.ok(evs.length > 0);
    t.same([...new Set(evs.map(e => e.ACTION))].sort(), ['add', 'remove'], 'no change (MDEV_STATE), bind or unbind');
    t.ok(evs.every(e => e.DRIVER === undefined && e.MDEV_STATE === undefined));
    // The mdevs' own events, and the VFIO group char devices vfio_mdev's probe makes (vfio_create_group).
    const mdevEvs = evs.filter(e => e.SUBSYSTEM === 'mdev');
    const groupEvs = evs.filter(e => e.SUBSYSTEM === 'vfio');
    t.equal(mdevEvs.length + groupEvs.length, evs.length, 'only mdev and vfio events');
    t.ok(mdevEvs.every(e => JSON.stringify(Object.keys(e)) === '["ACTION","DEVPATH","SUBSYSTEM","SEQNUM"]'));
    t.ok(
      groupEvs.length > 0 &&
        groupEvs.every(
          e =>
            /^\/devices\/virtual\/vfio\/\d+$/.test(e.DEVPATH!) &&
            JSON.stringify(Object.keys(e)) === '["ACTION","DEVPATH","SUBSYSTEM","MAJOR","MINOR","DEVNAME","SEQNUM"]',
        ),
    );
    t.same(
      evs.map(e => e.SEQNUM),
      evs.map((_, i) => String(i + 1)),
    );
    const failed = mdevEvs.filter(e => e.DEVPATH!.endsWith(U(0x204)));
    t.same(
      failed.map(e => e.ACTION),
      ['add', 'remove'],
      'a create the vendor refused: add, then remove',
    );
    t.same(
      evs.filter(e => e.DEVPATH!.endsWith(L.gvt)).map(e => e.ACTION),
      ['add', 'remove'],
      'the vetoed remove sent nothing',
    );
  });

  t.test('SIGTERM: clean exit, both mounts gone', async t => {
    t.same(await d.stop('SIGTERM', 10_000), { code: 0, signal: null });
    t.notOk(await isMounted(d.dir));
    t.notOk(await isMounted(vdir));
    const evs = await events(ueFile);
    t.ok(
      evs.slice(-3).every(e => e.ACTION === 'remove'),
      'the remaining devices were removed on the way out',
    );
  });
});
