// The VFIO device files through a real mount (`mount --vfio-dir`), modern
// profile: one file per IOMMU group, mtty's config space and UART loopback,
// exact positions; the group semantics of /dev/vfio/<N> (open claims the
// group, one open file description at a time, EBUSY otherwise; the first
// access opens the device, the last close closes it); a remove that proceeds
// while only the group is held (libvirt's nodeDeviceDestroy) and one that
// blocks until the last close of a device opened through the group; a clean
// exit with a device still open. Device fds are held by a python3 child
// (test/helpers/holder.ts), never by the daemon or this process.
import t from 'tap';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startDaemon, mdevfsMount, makeMountDir, isMounted, run, sh, BIN, FIXTURES, REPO } from '../helpers/daemon.js';
import { one, readOnce, sys, writeOnce } from '../helpers/sys.js';
import { startHolder, type Holder, type HolderResult, type HolderStep } from '../helpers/holder.js';
import { sleep } from '../helpers/util.js';

const SAMPLES = path.join(REPO, 'examples/samples.ts');
const ECHO = path.join(FIXTURES, 'vfio-echo-plugin.ts');
const REGION = (index: number) => index * 2 ** 40; // VFIO_PCI_OFFSET_SHIFT
const U = (n: number) => `83b8f4f2-509f-382f-3c1e-e6bfe0fa${n.toString(16).padStart(4, '0')}`;

/** mtty_create_config_space() of samples/vfio-mdev/mtty.c, for a device with `ports` ports. */
function mttyConfigSpace(ports: 1 | 2): Buffer {
  const c = Buffer.alloc(256);
  c.writeUInt32LE(0x32534348, 0x00); // vendor 0x4348, device 0x3253
  c.writeUInt16LE(0x0001, 0x04); // command: I/O+
  c.writeUInt16LE(0x0200, 0x06); // status
  c[0x08] = 0x10; // revision
  c[0x09] = 0x02; // prog-if 16550
  c[0x0b] = 0x07; // class: communication controller
  c.writeUInt32LE(0x1, 0x10); // BAR0: I/O
  if (ports === 2) c.writeUInt32LE(0x1, 0x14); // BAR1: I/O
  c.writeUInt32LE(0x32534348, 0x2c); // subsystem ids
  c[0x3d] = 0x01; // INTA#
  c[0x40] = 0x23;
  c[0x43] = 0x80;
  c[0x44] = 0x23;
  c[0x48] = 0x23;
  c[0x4c] = 0x23;
  c.write('PCI Serial/UART', 0x60, 'latin1');
  return c;
}

/** A pread's bytes as hex. */
async function hex(h: Holder, step: HolderStep): Promise<string> {
  const r = await h.do(step);
  return Buffer.isBuffer(r.ok) ? r.ok.toString('hex') : `errno ${r.errno}`;
}

/**
 * open(2) of a group file through the holder, retried while it is EBUSY: the
 * last close of a previous holder reaches the daemon (RELEASE) asynchronously
 * to its close(2), and the group stays claimed until then.
 */
async function openGroup(h: Holder, file: string): Promise<HolderResult> {
  let r = await h.do(['open', file, 'O_RDWR']);
  for (let i = 0; i < 40 && r.errno === 'EBUSY'; i++) {
    await sleep(50);
    r = await h.do(['open', file, 'O_RDWR']);
  }
  return r;
}

interface Ev {
  [k: string]: string;
}
async function events(file: string): Promise<Ev[]> {
  const text = await fsp.readFile(file, 'utf8');
  return text
    .split('\n')
    .filter(Boolean)
    .map(l => JSON.parse(l) as Ev);
}

t.test('VFIO device files, modern profile', async t => {
  const vdir = await makeMountDir(t);
  const tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'mdevfs-uevents-'));
  t.teardown(() => fsp.rm(tmp, { recursive: true, force: true }));
  const ueFile = path.join(tmp, 'uevents.jsonl');
  const d = await startDaemon(t, {
    command: mdevfsMount('--driver', SAMPLES, '--driver', ECHO, '--vfio-dir', vdir, '--uevents', ueFile),
  });
  const p = d.p;
  const v = (...parts: string[]) => path.join(vdir, ...parts);
  t.match(d.stdout, new RegExp(`\\(profile modern, 4 parents\\), VFIO device files at ${vdir}\\n`));
  const group = async (uuid: string) => path.basename((await one(['readlink', p(`bus/mdev/devices/${uuid}/iommu_group`)])) as string);
  const create = (type: string, uuid: string) =>
    writeOnce(p(`class/mdev_bus/${type.split('-')[0]}/mdev_supported_types/${type}/create`), uuid);

  t.test('one file per IOMMU group, named by the group id, 0600, size 0', async t => {
    t.same(await one(['listdir', vdir]), [], 'no devices, no files');
    t.equal(await create('mtty-2', U(1)), 36);
    t.equal(await create('mtty-1', U(2)), 36);
    t.equal(await create('vecho-1', U(3)), 36);
    const groups = [await group(U(1)), await group(U(2)), await group(U(3))];
    t.same(groups, ['0', '1', '2']);
    t.same(await one(['listdir', vdir]), groups);
    t.match(await one(['lstat', v(groups[0]!)]), { mode: 0o100600, size: 0, uid: 0, gid: 0 });
    const info = (await fsp.readFile('/proc/self/mountinfo', 'utf8')).split('\n').find(l => l.split(' ')[4] === vdir) ?? '';
    t.match(info, new RegExp(` - fuse\\.mdevfs mdevfs\\[${d.proc.pid}@\\d+\\] `), 'a second FUSE mount of the same daemon');
    t.same(await one(['lstat', p('devices/virtual/mtty/mtty/mtty_dev')]), { errno: 'ENOENT' }, 'no dev_attr_groups in the modern profile');
  });

  t.test('mtty: config space (region 7), exact bytes; BAR sizing through pwrite', async t => {
    const h = startHolder(t);
    const f2 = v(await group(U(1)));
    const f1 = v(await group(U(2)));
    t.same(await h.do(['open', f2, 'O_RDWR']), { ok: 0 });
    t.same(await h.do(['open', f1, 'O_RDWR']), { ok: 1 });
    t.equal(await hex(h, ['pread', 0, 256, REGION(7)]), mttyConfigSpace(2).toString('hex'), 'dual port: BAR0 and BAR1');
    t.equal(await hex(h, ['pread', 1, 256, REGION(7)]), mttyConfigSpace(1).toString('hex'), 'single port: BAR0 only');
    t.equal(await hex(h, ['pread', 0, 4, REGION(7)]), '48435332', 'vendor 0x4348, device 0x3253');
    // BAR sizing: write all ones, read back the size mask | I/O bit (8-byte I/O BAR).
    t.same(await h.do(['pwrite', 0, Buffer.from('ffffffff', 'hex'), REGION(7) + 0x10]), { ok: 4 });
    t.equal(await hex(h, ['pread', 0, 4, REGION(7) + 0x10]), 'f9ffffff');
    t.same(await h.do(['pwrite', 0, Buffer.from('00c00000', 'hex'), REGION(7) + 0x10]), { ok: 4 });
    t.equal(await hex(h, ['pread', 0, 4, REGION(7) + 0x10]), '01c00000', 'BAR0 programmed, I/O bit kept');
    t.same(await h.do(['close', 0]), { ok: 0 });
    t.same(await h.do(['close', 1]), { ok: 0 });
  });

  t.test('mtty: the UART loops back what is written to its data register', async t => {
    const h = startHolder(t);
    t.same(await openGroup(h, v(await group(U(1)))), { ok: 0 });
    const lsr = async (bar: number) => ((await h.do(['pread', 0, 1, REGION(bar) + 5])).ok as Buffer)[0];
    t.equal(await lsr(0), 0x60, 'LSR: THRE | TEMT, no data');
    for (const ch of 'mdev') t.same(await h.do(['pwrite', 0, ch, REGION(0) + 0]), { ok: 1 });
    t.equal(await lsr(0), 0x01, 'LSR: data ready (the sample sets THRE|TEMT only with an empty FIFO)');
    let got = '';
    for (let i = 0; i < 4; i++) got += ((await h.do(['pread', 0, 1, REGION(0)])).ok as Buffer).toString('latin1');
    t.equal(got, 'mdev', 'read back from RBR in order');
    t.equal(await lsr(0), 0x60, 'empty again');
    // The second port is BAR1 (region 1) on a dual-port device.
    t.same(await h.do(['pwrite', 0, 'x', REGION(1)]), { ok: 1 });
    t.equal(await lsr(1), 0x01);
    t.equal(await lsr(0), 0x60, 'port 0 untouched');
    t.equal(((await h.do(['pread', 0, 1, REGION(1)])).ok as Buffer).toString('latin1'), 'x');
    t.same(await h.do(['pread', 0, 1, REGION(6)]), { errno: 'EFAULT' }, "no such region: the plugin's errno");
    t.same(await h.do(['close', 0]), { ok: 0 });
  });

  t.test('positions reach the plugin exactly up to 2^53 - 1; the first access opens the device, the last close closes it', async t => {
    const f = v(await group(U(3)));
    const state = () => readOnce(p(`bus/mdev/devices/${U(3)}/vendor/state`));
    t.equal(await state(), 'closed 0 -\n');
    const h = startHolder(t);
    t.same(await h.do(['open', f, 'O_RDWR']), { ok: 0 });
    t.equal(await state(), 'closed 0 -\n', "open(2) claims the group only: the plugin's open has not run");
    for (const pos of [0, 2 ** 32 - 1, 2 ** 32 + 1, REGION(7) + 3, REGION(8) + 0xfff, 2 ** 52 + 1, 2 ** 53 - 1]) {
      t.equal(((await h.do(['pread', 0, 32, pos])).ok as Buffer).toString('latin1'), String(pos), `pread at ${pos}`);
    }
    t.equal(await state(), 'open 1 -\n', "the first pread ran the plugin's open, once for all the preads");
    t.same(await h.do(['pwrite', 0, 'abc', 2 ** 52 + 3]), { ok: 3 });
    t.equal(await state(), `open 1 ${2 ** 52 + 3}:616263\n`, 'pwrite position and data');
    for (const pos of [2 ** 53, 2 ** 53 + 1, 2 ** 62]) {
      t.same(await h.do(['pread', 0, 8, pos]), { errno: 'EINVAL' }, `${pos}: not exact in fuse-native, refused`);
    }
    t.same(await h.do(['dup', 0]), { ok: 1 }, 'a second descriptor for the same open file description');
    t.same(await h.do(['close', 0]), { ok: 0 });
    await sleep(200);
    t.match(await state(), /^open 1 /, 'still open through the dup');
    t.equal(((await h.do(['pread', 1, 32, 5])).ok as Buffer).toString('latin1'), '5', 'the dup reaches the open device');
    t.same(await h.do(['close', 1]), { ok: 0 });
    // RELEASE is asynchronous to close(2).
    let s = await state();
    for (let i = 0; i < 20 && !(typeof s === 'string' && s.startsWith('closed')); i++) {
      await sleep(50);
      s = await state();
    }
    t.match(s, /^closed 1 /, "the last close ran the plugin's close; its open ran once");
  });

  t.test('one open of a group at a time: EBUSY while it is held, also through a dup; free after the last close', async t => {
    t.equal(await create('vecho-1', U(5)), 36);
    const f = v(await group(U(5)));
    const h = startHolder(t);
    t.same(await h.do(['open', f, 'O_RDWR']), { ok: 0 });
    t.same((await sys([['open', f, 'O_RDWR']]))[0], { errno: 'EBUSY' }, 'a second open(2) while the first is held');
    t.same((await sys([['open', f, 'O_RDONLY']]))[0], { errno: 'EBUSY' }, 'whatever the access mode');
    t.same(await h.do(['open', f, 'O_RDWR']), { errno: 'EBUSY' }, 'also from the holder itself');
    t.same(await h.do(['dup', 0]), { ok: 1 });
    t.same(await h.do(['close', 0]), { ok: 0 });
    await sleep(200);
    t.same((await sys([['open', f, 'O_RDWR']]))[0], { errno: 'EBUSY' }, 'the dup keeps the open file description, and the claim');
    t.same(await h.do(['close', 1]), { ok: 0 });
    // RELEASE reaches the daemon asynchronously to close(2).
    let r = (await sys([['open', f, 'O_RDWR']]))[0];
    for (let i = 0; i < 20 && JSON.stringify(r) === '{"errno":"EBUSY"}'; i++) {
      await sleep(50);
      r = (await sys([['open', f, 'O_RDWR']]))[0];
    }
    t.same(r, { ok: 0 }, 'after the last close an open succeeds');
  });

  t.test("libvirt's nodeDeviceDestroy: with the group held open, remove returns and the device is gone", async t => {
    t.equal(await create('vecho-1', U(4)), 36);
    const g = await group(U(4));
    const h = startHolder(t);
    t.same(await h.do(['open', v(g), 'O_RDWR']), { ok: 0 }, 'libvirt opens /dev/vfio/<N> and keeps it open');
    const w = await sh(`echo 1 > ${p(`bus/mdev/devices/${U(4)}/remove`)}; echo rc=$?`, 10_000);
    t.equal(w.stdout, 'rc=0\n', 'mdevctl stop: the remove write returns and succeeds');
    t.same(await one(['lstat', p(`bus/mdev/devices/${U(4)}`)]), { errno: 'ENOENT' }, 'the device is gone');
    t.same(await one(['lstat', v(g)]), { errno: 'ENOENT' }, 'and its group file');
    t.same(await h.do(['pread', 0, 4, REGION(7)]), { errno: 'ENODEV' }, 'the held descriptor reaches no device');
    t.same(await h.do(['close', 0]), { ok: 0 }, 'and closes cleanly');
  });

  t.test('device open errors come from the plugin; ioctl and mmap are not carried by FUSE', async t => {
    const f = v(await group(U(3)));
    t.equal(await writeOnce(p(`bus/mdev/devices/${U(3)}/vendor/refuse_open`), 'EPERM\n'), 6);
    const h = startHolder(t);
    t.same(await openGroup(h, f), { ok: 0 }, "open(2) claims the group; the plugin's open does not run");
    t.same(await h.do(['pread', 0, 4, REGION(7)]), { errno: 'EPERM' }, "the plugin's refusal goes to the access that opens the device");
    t.equal(await writeOnce(p(`bus/mdev/devices/${U(3)}/vendor/refuse_open`), '\n'), 1);
    t.equal(((await h.do(['pread', 0, 4, 0])).ok as Buffer).toString('latin1'), '0', 'the next access opens it');
    t.same(await h.do(['ioctl', 0, 0x3b6b, 16]), { errno: 'ENOTTY' }, 'VFIO_DEVICE_GET_INFO: no ioctl through FUSE');
    t.same(await h.do(['mmap', 0, 4096, 0]), { errno: 'ENODEV' }, 'no shared mmap of a direct_io file');
    t.same(await h.do(['close', 0]), { ok: 0 });
    t.same(await one(['stat', v('99')]), { errno: 'ENOENT' }, 'no such group');
  });

  t.test('modern remove of a device opened through the group: blocks until the last close; `remove` is gone meanwhile', async t => {
    const h = startHolder(t);
    const g = await group(U(1));
    t.same(await openGroup(h, v(g)), { ok: 0 });
    t.equal(await hex(h, ['pread', 0, 4, REGION(7)]), '48435332', 'the device is opened through the group');
    t.same(await h.do(['dup', 0]), { ok: 1 });
    const removeFile = p(`bus/mdev/devices/${U(1)}/remove`);
    let settled = false;
    const writer = sh(`echo 1 > ${removeFile}; echo rc=$?`, 20_000).then(r => {
      settled = true;
      return r;
    });
    await sleep(500);
    t.notOk(settled, 'the writer has not returned after 500 ms');
    t.same(await one(['lstat', removeFile]), { errno: 'ENOENT' }, '`remove` is already gone');
    t.same((await sys([['open', removeFile, 'O_WRONLY']]))[0], { errno: 'ENOENT' }, 'a second remove: open(O_WRONLY) fails with ENOENT');
    // bus/mdev/devices/<uuid> went with device_del (bus_remove_device); the directory is still there.
    const again = await sh(`echo 1 > ${p(`devices/virtual/mtty/mtty/${U(1)}/remove`)}`);
    t.match(again.stderr, /Permission denied/, "bash's O_CREAT open gets EACCES, as on real sysfs (no create in a sysfs dir)");
    t.same(
      await one(['lstat', p(`class/mdev_bus/mtty/mdev_supported_types/mtty-2/devices/${U(1)}`)]),
      { errno: 'ENOENT' },
      'type link gone',
    );
    t.match(await one(['lstat', v(g)]), { mode: 0o100600 }, 'the group file stays until the device lets go');
    t.same((await sys([['open', v(g), 'O_RDWR']]))[0], { errno: 'EBUSY' }, 'the group is still claimed');
    t.equal(await hex(h, ['pread', 0, 4, REGION(7)]), '48435332', 'open descriptors keep working');
    t.notOk(
      (await events(ueFile)).some(e => e.DEVPATH?.endsWith(U(1)) && e.ACTION === 'remove'),
      'no remove uevent yet',
    );

    t.same(await h.do(['close', 0]), { ok: 0 });
    await sleep(300);
    t.notOk(settled, 'the dup still holds the open file description');
    t.same(await h.do(['close', 1]), { ok: 0 });
    const w = await Promise.race([writer, sleep(5000).then(() => undefined)]);
    t.ok(w, 'the writer returned after the last close');
    t.equal(w?.stdout, 'rc=0\n', 'and its write succeeded');
    t.same(await one(['lstat', p(`bus/mdev/devices/${U(1)}`)]), { errno: 'ENOENT' }, 'the device is gone');
    t.same(await one(['lstat', v(g)]), { errno: 'ENOENT' }, 'so is its group file');
    const evs = (await events(ueFile)).filter(e => e.DEVPATH?.endsWith(U(1)));
    t.same(
      evs.map(e => e.ACTION),
      ['add', 'bind', 'unbind', 'remove'],
    );
  });

  t.test('a holder killed with SIGKILL releases the device', async t => {
    const h = startHolder(t);
    t.same(await openGroup(h, v(await group(U(3)))), { ok: 0 });
    t.equal(((await h.do(['pread', 0, 4, 0])).ok as Buffer).toString('latin1'), '0', 'the device is open');
    let settled = false;
    const writer = writeOnce(p(`bus/mdev/devices/${U(3)}/remove`), '1').then(r => {
      settled = true;
      return r;
    });
    await sleep(300);
    t.notOk(settled, 'the remove waits for the device');
    h.kill('SIGKILL');
    await h.exited;
    const r = await Promise.race([writer, sleep(5000).then(() => 'timeout')]);
    t.equal(r, 1, 'the kernel closed its descriptor; the remove went through');
    t.same(await one(['lstat', p(`bus/mdev/devices/${U(3)}`)]), { errno: 'ENOENT' });
  });

  t.test('the uevent stream: JSON lines, keys in kernel order, string values', async t => {
    const evs = await events(ueFile);
    t.same(evs[0], { ACTION: 'add', DEVPATH: '/bus/mdev/drivers/mtty', SUBSYSTEM: 'drivers', SEQNUM: '1' }, "the vendor's driver");
    t.same(Object.keys(evs[1]!), ['ACTION', 'DEVPATH', 'SUBSYSTEM', 'MDEV_STATE', 'SEQNUM']);
    t.same(evs[1], { ACTION: 'change', DEVPATH: '/devices/virtual/mtty/mtty', SUBSYSTEM: 'mtty', MDEV_STATE: 'registered', SEQNUM: '2' });
    const add = evs.find(e => e.ACTION === 'add' && e.SUBSYSTEM === 'mdev')!;
    t.same(Object.keys(add), ['ACTION', 'DEVPATH', 'SUBSYSTEM', 'SEQNUM']);
    const bind = evs.find(e => e.ACTION === 'bind')!;
    t.same(Object.keys(bind), ['ACTION', 'DEVPATH', 'SUBSYSTEM', 'DRIVER', 'SEQNUM']);
    t.same(
      evs.map(e => Number(e.SEQNUM)),
      evs.map((_, i) => i + 1),
      'SEQNUM counts from 1',
    );
  });

  t.test('SIGTERM with a device open: clean exit, both mounts gone', async t => {
    const h = startHolder(t);
    t.same(await openGroup(h, v(await group(U(2)))), { ok: 0 });
    t.equal(await hex(h, ['pread', 0, 4, REGION(7)]), '48435332', 'the device is open');
    const e = await d.stop('SIGTERM', 10_000);
    t.same(e, { code: 0, signal: null }, 'exit status 0');
    t.notOk(await isMounted(d.dir), 'the tree is unmounted');
    t.notOk(await isMounted(vdir), 'the device files are unmounted');
    const r = await h.do(['pread', 0, 4, REGION(7)]);
    t.ok(r.errno, `the holder's descriptor is dead (${r.errno})`);
    // close(2) releases the descriptor whatever FLUSH answers (here: nobody).
    t.match(await h.do(['close', 0]), { errno: /^(ENOTCONN|ECONNABORTED)$/ }, 'close reports the dead connection');
    t.same(await h.do(['close', 0]), { errno: 'EBADF' }, 'and the descriptor is gone');
  });
});

t.test('--vfio-dir and --uevents: one-line errors, nothing mounted', async t => {
  const dir = await makeMountDir(t);
  const other = await makeMountDir(t);
  const cases: Array<[string[], RegExp]> = [
    [['--vfio-dir', dir], /^mdevfs: --vfio-dir .* must be outside the tree's mount point/],
    [['--vfio-dir', path.join(other, 'missing')], /^mdevfs: mount point .*missing does not exist\n$/],
    [['--vfio-dir', other, '--uevents', path.join(other, 'ue')], /^mdevfs: --uevents .* is inside the mount point/],
    [['--uevents', '/nonexistent-dir/ue'], /^mdevfs: --uevents: cannot open \/nonexistent-dir\/ue: ENOENT/],
  ];
  for (const [args, re] of cases) {
    const r = await run(process.execPath, [BIN, 'mount', dir, ...args], { timeoutMs: 20_000 });
    t.equal(r.code, 1, args.join(' '));
    t.match(r.stderr, re);
    t.equal(r.stderr.trimEnd().split('\n').length, 1, 'one line');
    t.notOk(await isMounted(dir));
    t.notOk(await isMounted(other));
  }
});
