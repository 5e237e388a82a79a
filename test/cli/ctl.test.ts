// The control plane through a real mount: `mdevfs mount` serves the control
// socket, `mdevfs ctl --at <dir>` drives it, and coreutils and raw syscalls
// see the result (docs/control.md). TMPDIR points the socket's directory at
// a fresh temp dir, so nothing is made under the host's /tmp or /run.
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { BIN, FIXTURES, makeMountDir, mdevfsMount, run, spawnChild, startDaemon, type Teardownable } from '../helpers/daemon.js';
import { one, readOnce, sys, writeOnce } from '../helpers/sys.js';
import { PYTHON, waitFor, scratchDir } from '../helpers/util.js';
import { P, TA, TB } from '../fixtures/test-plugin.js';
import type { ControlState } from '../../src/core/control.js';
import { ControlClient } from '../../src/index.js';

const PLUGIN = `${FIXTURES}/test-plugin.ts`;
const U = (n: number) => `83b8f4f2-509f-382f-3c1e-e6bfe0fa20${n.toString().padStart(2, '0')}`;

const tmpdir = (t: Teardownable): Promise<string> => scratchDir(t, 'mdevfs-ctl-test-');

t.test('mdevfs ctl through a mount', async t => {
  const tmp = await tmpdir(t);
  const env = { ...process.env, TMPDIR: tmp };
  const vdir = await makeMountDir(t);
  const d = await startDaemon(t, { command: mdevfsMount('--driver', PLUGIN, '--vfio-dir', vdir), env });
  const p = d.p;
  const ctl = (...args: string[]) => run(process.execPath, [BIN, 'ctl', '--at', d.dir, ...args], { env, timeoutMs: 20_000 });
  const create = (type: string, uuid: string) => writeOnce(p(type, 'create'), uuid);
  const avail = async (type: string) => readOnce(p(type, 'available_instances'));
  const state = async () => JSON.parse((await ctl('state', '--json')).stdout) as ControlState;

  t.test('the socket: mode 0600 in a directory of mode 0700 owned by root', async t => {
    const dir = path.join(tmp, 'mdevfs-ctl-0');
    const st = await fsp.lstat(dir);
    t.equal(st.mode & 0o7777, 0o700);
    t.equal(st.uid, 0);
    const socks = await fsp.readdir(dir);
    t.equal(socks.length, 1);
    const s = await fsp.lstat(path.join(dir, socks[0]!));
    t.ok(s.isSocket());
    t.equal(s.mode & 0o777, 0o600);
  });

  t.test('unplug: devices removed first, then the parent; plug brings it back', async t => {
    t.equal(await create(TA, U(1)), 36);
    t.equal(await create(TB, U(2)), 36);
    const ev = spawnChild(t, [process.execPath, BIN, 'ctl', 'events', '--json', '--at', d.dir], env);
    t.ok(await waitFor(async () => ev.err().includes('listening'), 20_000), 'subscribed');
    const r = await ctl('unplug', 'mtest');
    t.equal(r.code, 0, r.stderr);
    t.same(await one(['listdir', p('class/mdev_bus')]), ['0000:00:02.0'], 'the parent is gone from class/mdev_bus');
    t.same(await one(['lstat', p(P)]), { errno: 'ENOENT' });
    t.same(await one(['lstat', p('bus/mdev/devices', U(1))]), { errno: 'ENOENT' }, 'and its devices');
    const lines = () =>
      ev
        .out()
        .split('\n')
        .filter(Boolean)
        .map(l => JSON.parse(l) as Record<string, string>);
    t.ok(await waitFor(async () => lines().some(e => e.MDEV_STATE === 'unregistered'), 10_000), 'the parent event came');
    const evs = lines();
    const parentAt = evs.findIndex(e => e.DEVPATH === `/${P}` && e.MDEV_STATE === 'unregistered');
    t.equal(parentAt, evs.length - 1, "the parent's change event is the last");
    for (const u of [U(1), U(2)]) {
      const at = evs.findIndex(e => e.ACTION === 'remove' && e.DEVPATH === `/${P}/${u}`);
      t.ok(at >= 0 && at < parentAt, `${u}'s remove comes before the parent's event`);
    }
    t.same(
      Object.keys(evs[parentAt]!),
      ['ACTION', 'DEVPATH', 'SUBSYSTEM', 'MDEV_STATE', 'SEQNUM'],
      'ACTION=change with MDEV_STATE, kernel key order',
    );
    t.equal(evs[parentAt]!.ACTION, 'change');
    t.match(
      (await state()).parents.find(x => x.name === 'mtest'),
      { state: 'unplugged' },
    );
    t.match(await ctl('unplug', 'mtest'), { code: 1, stderr: /^mdevfs: unplug mtest: ENODEV .*already unplugged/ });

    t.equal((await ctl('plug', 'mtest')).code, 0);
    t.same(await one(['listdir', p('class/mdev_bus')]), ['0000:00:02.0', 'mtest']);
    t.equal(await avail(TA), '3\n', 'the counter is whole again');
    t.same(await one(['listdir', p(TA, 'devices')]), []);
    t.ok(await waitFor(async () => lines().some(e => e.MDEV_STATE === 'registered'), 10_000), 'MDEV_STATE=registered');
    t.match(await ctl('plug', 'mtest'), { code: 1, stderr: /EEXIST/ });
    t.match(await ctl('unplug', 'nosuch'), { code: 1, stderr: /^mdevfs: unplug nosuch: ENODEV/ });
  });

  t.test('fail create: the write gets the errno, nothing is left', async t => {
    const f = await ctl('fail', 'create', '--errno', 'ENOSPC', '--type', 'mtest-a', '--count', '2');
    t.match(f, { code: 0, stdout: /^fault \d+: create type=mtest-a errno=ENOSPC remaining=2\n$/ });
    t.equal(await create(TB, U(3)), 36, 'another type is not matched');
    t.equal(await create(TA, U(4)), 'ENOSPC');
    t.equal(await create(TA, U(5)), 'ENOSPC');
    for (const u of [U(4), U(5)]) t.same(await one(['lstat', p('bus/mdev/devices', u)]), { errno: 'ENOENT' }, `${u} not half-made`);
    t.same(await one(['listdir', p(TA, 'devices')]), []);
    t.equal(await avail(TA), '2\n', 'only the mtest-b device counts');
    t.same((await state()).faults, [], 'used up');
    t.equal(await create(TA, U(4)), 36, 'then creates work');
  });

  t.test('fail remove: the write gets the errno, the device stays whole', async t => {
    t.equal((await ctl('fail', 'remove', '--uuid', U(4), '--errno', 'EBUSY')).code, 0);
    t.equal(await writeOnce(p('bus/mdev/devices', U(4), 'remove'), '1'), 'EBUSY');
    t.same(await one(['listdir', p(TA, 'devices')]), [U(4)]);
    t.match(await one(['lstat', p('bus/mdev/devices', U(4), 'remove')]), { mode: 0o100200 });
    t.match(await one(['readlink', p('bus/mdev/devices', U(4), 'driver')]), /\/bus\/mdev\/drivers\/mtest$/, 'still bound');
    t.equal(await writeOnce(p('bus/mdev/devices', U(4), 'remove'), '1'), 1, 'the next remove goes through');
    t.equal(await writeOnce(p('bus/mdev/devices', U(3), 'remove'), '1'), 1);
  });

  t.test('fail show and store: the vendor attribute fails, its value is untouched', async t => {
    t.equal(await create(TA, U(6)), 36);
    const knob = p('bus/mdev/devices', U(6), 'vendor/knob');
    t.equal(await writeOnce(knob, 'one'), 3);
    t.equal((await ctl('fail', 'store', '--uuid', U(6), '--errno', 'EPERM')).code, 0);
    t.equal(await writeOnce(knob, 'two'), 'EPERM');
    t.equal(await readOnce(knob), 'one\n', 'the store did not happen');
    t.equal((await ctl('fail', 'show', '--parent', 'mtest', '--errno', 'EIO')).code, 0);
    t.same(await readOnce(knob), { errno: 'EIO' });
    t.equal(await readOnce(knob), 'one\n');
  });

  t.test('fail open: the first access through the group file gets the errno', async t => {
    const group = path.basename((await one(['readlink', p('bus/mdev/devices', U(6), 'iommu_group')])) as string);
    t.equal((await ctl('fail', 'open', '--uuid', U(6), '--errno', 'ENXIO')).code, 0);
    const r = await sys([
      ['open', path.join(vdir, group), 'O_RDWR'],
      ['pread', 0, 4, 0],
      ['pread', 0, 4, 0],
      ['close', 0],
    ]);
    t.same(r[1], { errno: 'ENXIO' }, 'the open failed in the vendor place');
    t.notOk(r[2]!.errno === 'ENXIO', 'the next access opens the device');
    t.match(
      (await state()).devices.find(x => x.uuid === U(6)),
      { state: 'active', openCount: 0 },
    );
  });

  t.test('delay create: a read completes while the create waits', async t => {
    t.equal((await ctl('delay', 'create', '4000', '--type', 'mtest-a')).code, 0);
    const writer = spawnChild(t, ['bash', '-c', `echo ${U(7)} > ${p(TA, 'create')}; echo rc=$?`]);
    let writerDone = false;
    void writer.exited.then(() => (writerDone = true));
    t.ok(
      await waitFor(async () => (await state()).devices.some(x => x.uuid === U(7) && x.state === 'adding'), 20_000),
      'the create is under way',
    );
    t.equal(await avail(TB), '1\n', 'available_instances is read meanwhile');
    t.notOk(writerDone, 'before the delayed create returned');
    await writer.exited;
    t.equal(writer.out(), 'rc=0\n', 'then the create succeeds');
    t.same(await one(['listdir', p(TA, 'devices')]), [U(6), U(7)].sort());
  });

  t.test('set-available: available_instances and creates agree', async t => {
    for (const u of [U(6), U(7)]) t.equal(await writeOnce(p('bus/mdev/devices', u, 'remove'), '1'), 1);
    t.equal((await ctl('set-available', 'mtest-a', '1')).code, 0);
    t.equal(await avail(TA), '1\n');
    t.equal(await avail(TB), '1\n', "the core counter is the parent's");
    t.equal(await create(TB, U(8)), 36);
    t.equal(await avail(TA), '0\n');
    t.equal(await create(TA, U(9)), 'EUSERS');
    t.same(await one(['lstat', p('bus/mdev/devices', U(9))]), { errno: 'ENOENT' });
    t.match(await ctl('set-available', 'mtest-a', '5'), { code: 1, stderr: /ERANGE/ });
    t.equal((await ctl('set-available', 'mtest-a', '2')).code, 0, 'given back');
    t.equal(await create(TA, U(9)), 36);
    t.match(await ctl('set-available', 'nosuch', '1'), { code: 1, stderr: /^mdevfs: set-available nosuch: ENODEV/ });
  });

  t.test('state: text and JSON', async t => {
    const s = await state();
    t.same(s.parents.map(x => [x.name, x.state]).sort(), [
      ['0000:00:02.0', 'live'],
      ['mtest', 'live'],
    ]);
    t.same(s.devices.map(x => x.uuid).sort(), [U(8), U(9)]);
    const text = await ctl('state');
    t.match(text.stdout, new RegExp(`^parent mtest live \\(/sys/${P}\\)$`, 'm'));
    t.match(text.stdout, new RegExp(`^device ${U(9)} mtest/mtest-a active driver=mtest group=\\d+ open=0$`, 'm'));
  });

  t.test('events as text, and --count ends it', async t => {
    const ev = spawnChild(t, [process.execPath, BIN, 'ctl', 'events', '--count', '1', '--at', d.dir], env);
    t.ok(await waitFor(async () => ev.err().includes('listening'), 20_000), 'subscribed');
    t.equal(await create(TB, U(10)), 36);
    t.equal((await ev.exited).code, 0, 'exits after one event');
    t.match(ev.out(), new RegExp(`^\\d+ add /${P}/${U(10)} \\(mdev\\)\n$`));
  });

  t.test('bad requests are one-line errors', async t => {
    t.match(await ctl('fail', 'create', '--errno', 'ENOPE'), { code: 1, stderr: /^mdevfs: fail create: EINVAL \(.*unknown errno ENOPE/ });
    t.match(await ctl('fail', 'frob', '--errno', 'EIO'), { code: 1, stderr: /expected one of create, remove, open, show, store/ });
    t.same((await state()).faults, []);
    const nowhere = await run(process.execPath, [BIN, 'ctl', 'state'], { env: { ...env, MDEVFS_CTL: '' } });
    t.match(nowhere, { code: 1, stderr: /^mdevfs: no daemon to control: MDEVFS_CTL is not set/ });
    const other = await run(process.execPath, [BIN, 'ctl', '--at', tmp, 'state'], { env });
    t.match(other, { code: 1, stderr: /^mdevfs: control socket .*ENOENT/ }, 'no daemon for that directory');
  });
});

t.test('only root can use the socket', async t => {
  const tmp = await tmpdir(t);
  await fsp.chmod(tmp, 0o755); // only the socket's own directory keeps others out
  const env = { ...process.env, TMPDIR: tmp };
  const d = await startDaemon(t, { command: mdevfsMount('--driver', PLUGIN), env });
  const dir = path.join(tmp, 'mdevfs-ctl-0');
  const sock = path.join(dir, (await fsp.readdir(dir))[0]!);
  const py = `
import socket, sys
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(sys.argv[1]); s.sendall(b'{"op":"unplug","parent":"mtest"}\\n'); print(s.recv(4096).decode())
except OSError as e:
    print(type(e).__name__, e.errno)
`;
  const asNobody = await run('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', PYTHON, '-c', py, sock]);
  t.equal(asNobody.stdout.trim(), 'PermissionError 13', 'EACCES for another user');
  t.same(await one(['listdir', d.p('class/mdev_bus')]), ['0000:00:02.0', 'mtest'], 'nothing was unplugged');
  const asRoot = await run(PYTHON, ['-c', py, sock]);
  t.equal(asRoot.stdout.trim(), '{"ok":true}', 'root can');
});

t.test('a socket directory someone else owns or can write is refused, nothing mounted', async t => {
  for (const [what, prep] of [
    ['owned by another user', (dir: string) => fsp.mkdir(dir, { mode: 0o700 }).then(() => fsp.chown(dir, 65534, 65534))],
    ['writable by others', (dir: string) => fsp.mkdir(dir).then(() => fsp.chmod(dir, 0o777))],
    ['a symbolic link', (dir: string) => fsp.mkdir(`${dir}.real`, { mode: 0o700 }).then(() => fsp.symlink(`${dir}.real`, dir))],
  ] as const) {
    const tmp = await tmpdir(t);
    await prep(path.join(tmp, 'mdevfs-ctl-0'));
    const mnt = await makeMountDir(t);
    const c = spawnChild(t, mdevfsMount('--driver', PLUGIN)(mnt), { ...process.env, TMPDIR: tmp });
    // Bounded: a daemon that wrongly accepted the directory would serve forever.
    const exit = await Promise.race([c.exited, waitFor(async () => c.out().includes('mounted'), 30_000).then(() => undefined)]);
    t.equal(exit?.code, 1, what);
    t.match(c.err(), /^mdevfs: control socket: refusing .*mdevfs-ctl-0: /, what);
    t.same(await one(['listdir', mnt]), [], `${what}: nothing left mounted`);
    t.same(await fsp.readdir(path.join(tmp, 'mdevfs-ctl-0')), [], `${what}: no socket made there`);
  }
});

t.test('--no-ctl serves no socket', async t => {
  const tmp = await tmpdir(t);
  const d = await startDaemon(t, { command: mdevfsMount('--driver', PLUGIN, '--no-ctl'), env: { ...process.env, TMPDIR: tmp } });
  t.match(d.stdout, /mounted/);
  t.same(await one(['lstat', path.join(tmp, 'mdevfs-ctl-0')]), { errno: 'ENOENT' });
});

t.test('the programmatic client (ControlClient from the package entry) against a mount', async t => {
  const tmp = await tmpdir(t);
  const d = await startDaemon(t, { command: mdevfsMount('--driver', PLUGIN), env: { ...process.env, TMPDIR: tmp } });
  const dir = path.join(tmp, 'mdevfs-ctl-0');
  const c = new ControlClient(path.join(dir, (await fsp.readdir(dir))[0]!));
  const seen: string[] = [];
  const stream = await c.events(ev => seen.push(`${ev.ACTION} ${ev.DEVPATH}${ev.MDEV_STATE ? ` ${ev.MDEV_STATE}` : ''}`));
  t.equal(await writeOnce(d.p(TA, 'create'), U(1)), 36);
  const f = await c.fail('create', 'EAGAIN', { parent: 'mtest' });
  t.match(f, { op: 'create', parent: 'mtest', errno: 'EAGAIN', remaining: 1 });
  t.equal(await writeOnce(d.p(TA, 'create'), U(2)), 'EAGAIN');
  t.equal(await c.setAvailable('mtest-b', 0), 0);
  t.equal(await readOnce(d.p(TA, 'available_instances')), '0\n');
  await c.unplug('mtest');
  t.match(await c.unplug('mtest').catch((e: unknown) => e), { errno: 'ENODEV' }, 'a refusal rejects with the errno');
  await c.plug('mtest');
  t.ok(await waitFor(async () => seen.at(-1) === `change /${P} registered`, 10_000));
  stream.close();
  await stream.closed;
  t.equal(seen[0], `add /${P}/${U(1)}`, 'events from the subscription on');
  const deviceRemove = seen.indexOf(`remove /${P}/${U(1)}`);
  const parentGone = seen.indexOf(`change /${P} unregistered`);
  t.ok(deviceRemove >= 0 && deviceRemove < parentGone, 'device removed before the parent goes');
  t.ok(seen.includes(`add /${P}/${U(2)}`) && seen.includes(`remove /${P}/${U(2)}`), 'the failed create came and went');
  t.same((await c.state()).devices, [], 'no device after the replug');
});

t.test('a background daemon: ctl --at reaches it, umount removes the socket', async t => {
  const tmp = await tmpdir(t);
  const env = { ...process.env, TMPDIR: tmp };
  const dir = await makeMountDir(t);
  t.teardown(() => run(process.execPath, [BIN, 'umount', dir], { env, timeoutMs: 20_000 }));
  const started = await run(process.execPath, [BIN, 'mount', dir, '--driver', PLUGIN, '--background', '--json'], {
    env,
    timeoutMs: 60_000,
  });
  t.equal(started.code, 0, started.stderr);
  const r = await run(process.execPath, [BIN, 'ctl', '--at', dir, 'unplug', 'mtest'], { env });
  t.equal(r.code, 0, r.stderr);
  t.same(await one(['listdir', path.join(dir, 'class/mdev_bus')]), ['0000:00:02.0']);
  t.equal((await run(process.execPath, [BIN, 'umount', dir], { env, timeoutMs: 20_000 })).code, 0);
  t.same(await fsp.readdir(path.join(tmp, 'mdevfs-ctl-0')), [], 'the socket went with the daemon');
});
