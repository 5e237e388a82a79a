// The VFIO device files in memory: the presenter's files follow the core's
// IOMMU groups; a group file's open claims the group (one open file
// description at a time, EBUSY otherwise) and does not open the device; the
// first read/write opens the device through core.vfio, the last close closes
// it; the FUSE ops table treats the node as a device (per-open handle,
// position passed through, st_size 0). No mount here.
import t from 'tap';
import { VfioDevPresenter } from '../../src/devfs/vfio.js';
import { KDevFile, KernfsRoot, openDev, O_RDONLY, O_RDWR, O_WRONLY } from '../../src/kernfs/index.js';
import { createOperations, statOf } from '../../src/fuse/ops.js';
import type { MdevDevice } from '../../src/core/api.js';
import { errnoOf, harness, register } from '../core/helpers.js';
import { sleep, uuid } from '../helpers/util.js';
import { removeStore } from '../../src/sysfs/stores.js';

async function setup(profile: 'modern' | 'legacy' = 'modern') {
  const h = harness(profile);
  const calls: string[] = [];
  const { type } = await register(h, 'mtty', {
    open(d: MdevDevice) {
      calls.push(`open ${d.uuid.slice(-1)}`);
    },
    close(d: MdevDevice) {
      calls.push(`close ${d.uuid.slice(-1)}`);
    },
    read(_d, count, offset) {
      return Buffer.from(`${offset}/${count}`).subarray(0, count);
    },
    write(_d, data, offset) {
      calls.push(`write ${offset} ${data.toString()}`);
      return data.length;
    },
    ...(profile === 'legacy' ? { getAvailable: () => 4 } : {}),
  });
  const vp = new VfioDevPresenter(h.core).attach();
  return { h, type, vp, calls };
}

t.test('files follow the IOMMU groups', async t => {
  const { h, type, vp } = await setup();
  t.same(vp.groups(), []);
  const a = await h.core.create(type, uuid(1));
  const b = await h.core.create(type, uuid(2));
  t.same([a.iommuGroup, b.iommuGroup], [0, 1]);
  t.same([...vp.root.children.keys()], ['0', '1']);
  const f = vp.root.get('0') as KDevFile;
  t.ok(f instanceof KDevFile);
  t.equal(f.mode, 0o600);
  t.match(statOf(f), { mode: 0o100600, size: 0, uid: 0, gid: 0, nlink: 1 });
  await h.core.remove(a);
  t.same(vp.groups(), [1], 'removed with its device');
  t.ok(f.dead);
  const c = await h.core.create(type, uuid(3));
  t.equal(c.iommuGroup, 0, 'lowest free id again');
  t.not(vp.root.get('0'), f, 'a new file for the new device');
  vp.detach();
  await h.core.create(type, uuid(4));
  t.same(vp.groups(), [0, 1], 'detached: no longer follows');
  vp.attach();
  t.same(vp.groups(), [0, 1, 2], 'attach resyncs');
});

t.test('open claims the group; the first access opens the device, the last close closes it', async t => {
  const { h, type, vp, calls } = await setup();
  await h.core.create(type, uuid(1));
  const f = vp.root.get('0') as KDevFile;
  const a = await openDev(f, O_RDWR);
  t.same(calls, [], "open(2) claims the group only: the plugin's open has not run");
  t.equal(h.core.vfio.openHandles, 0, 'no device handle yet');
  const [r1, r2] = await Promise.all([a.read(7 * 2 ** 40 + 3, 64), a.read(0, 4)]);
  t.equal(r1.toString(), `${7 * 2 ** 40 + 3}/64`);
  t.equal(r2.toString(), '0/4');
  t.same(calls, ['open 1'], "the first accesses opened the device once (GET_DEVICE_FD's stand-in)");
  t.equal(await a.write(Buffer.from('xy'), 2 ** 52), 2);
  t.equal(await errnoOf(a.read(2 ** 53, 1)), 'EINVAL', 'a position fuse-native cannot carry exactly');
  t.same(calls, ['open 1', `write ${2 ** 52} xy`], 'one open for every access');
  await a.release();
  await a.release();
  t.equal(await errnoOf(a.read(0, 1)), 'EBADF', 'released');
  t.same(calls.at(-1), 'close 1', 'the last close of the descriptor closes the device');
  t.equal(h.core.vfio.openHandles, 0);
  const b = await openDev(f, O_RDONLY);
  t.equal(await errnoOf(b.write(Buffer.from('x'), 0)), 'EBADF', 'read-only descriptor');
  t.same(calls.at(-1), 'close 1', 'a refused access does not open the device');
  await b.release();
  t.same(calls, ['open 1', `write ${2 ** 52} xy`, 'close 1'], 'a descriptor that never accessed the device: no open, no close');
  const w = await openDev(f, O_WRONLY);
  t.ok(w, 'write-only open is allowed (0600)');
  await w.release();
});

t.test('one open file description per group at a time: EBUSY (vfio_group_fops_open)', async t => {
  const { h, type, vp, calls } = await setup();
  await h.core.create(type, uuid(1));
  await h.core.create(type, uuid(2));
  const f0 = vp.root.get('0') as KDevFile;
  const a = await openDev(f0, O_RDWR);
  t.equal(await errnoOf(openDev(f0, O_RDWR)), 'EBUSY', 'a second open of the claimed group');
  t.equal(await errnoOf(openDev(f0, O_RDONLY)), 'EBUSY', 'whatever the access mode');
  const b = await openDev(vp.root.get('1') as KDevFile, O_RDWR);
  t.ok(b, 'another group is independent');
  await a.read(0, 1);
  t.equal(await errnoOf(openDev(f0, O_RDWR)), 'EBUSY', 'still claimed with the device open through it');
  await a.release();
  const again = await openDev(f0, O_RDWR);
  t.ok(again, 'after the last close, the group can be opened again');
  await again.read(0, 1);
  t.same(calls, ['open 1', 'close 1', 'open 1'], 'the new descriptor opens the device afresh');
  await again.release();
  await b.release();
});

t.test('a remove while only the group is claimed proceeds at once; the descriptor then gives ENODEV', async t => {
  for (const profile of ['modern', 'legacy'] as const) {
    const { h, type, vp, calls } = await setup(profile);
    const d = await h.core.create(type, uuid(1));
    const f = vp.root.get('0') as KDevFile;
    const held = await openDev(f, O_RDWR);
    await removeStore(h.core, d, '1');
    t.equal(d.state, 'gone', `${profile}: removed without waiting for the group's close`);
    t.same(vp.groups(), [], `${profile}: the group file went with the device`);
    t.equal(await errnoOf(held.read(7 * 2 ** 40, 4)), 'ENODEV', `${profile}: no device to open through the group (GET_DEVICE_FD: ENODEV)`);
    t.equal(await errnoOf(held.write(Buffer.from('x'), 0)), 'ENODEV', `${profile}: nor to write`);
    // The same UUID and group id again: a new group object, which the old descriptor never reaches.
    await h.core.create(type, uuid(1));
    t.not(vp.root.get('0'), f, `${profile}: a new file for group 0`);
    t.equal(await errnoOf(held.read(0, 1)), 'ENODEV', `${profile}: the old descriptor still reaches nothing`);
    const fresh = await openDev(vp.root.get('0') as KDevFile, O_RDWR);
    t.ok(fresh, `${profile}: the new group is not claimed by the old descriptor`);
    t.equal((await fresh.read(0, 3)).toString(), '0/3');
    await fresh.release();
    await held.release();
    t.same(calls, ['open 1', 'close 1'], `${profile}: only the new device was opened, and closed once`);
  }
});

t.test('device access: plugin refusals, a remove that waits for the close, no access while removing', async t => {
  const { h, type, vp, calls } = await setup();
  const d = await h.core.create(type, uuid(1));
  const f = vp.root.get('0') as KDevFile;
  const ops = h.core.parent('mtty')!.ops as { open?: unknown };
  const open = ops.open;
  ops.open = () => {
    throw { errno: 'EBUSY' };
  };
  const held = await openDev(f, O_RDWR);
  t.equal(await errnoOf(held.read(0, 1)), 'EBUSY', "the plugin's open errno goes to the access that needed it");
  ops.open = open;
  t.equal((await held.read(0, 3)).toString(), '0/3', 'the next access tries the open again');
  t.same(calls, ['open 1']);
  const removing = h.core.remove(d);
  await sleep(20);
  t.equal(d.state, 'removing', 'modern: with the device open through the group, remove waits for the close');
  t.ok(vp.root.get('0'), 'the file stays meanwhile');
  t.equal((await held.read(7, 2)).toString(), '7/', 'the open device keeps working until the close');
  t.equal(await errnoOf(openDev(f, O_RDWR)), 'EBUSY', 'the group is still claimed');
  await held.release();
  await removing;
  t.same(calls, ['open 1', 'close 1']);
  t.same(vp.groups(), []);
  t.equal(await errnoOf(openDev(f, O_RDWR)), 'ENOENT', 'a dead node');

  // A device being removed because of another user (the programmatic API): the group opens, the device does not.
  const e = await h.core.create(type, uuid(2));
  const other = await h.core.vfio.open(e.uuid);
  const removingE = h.core.remove(e);
  await sleep(20);
  t.equal(e.state, 'removing');
  const g = await openDev(vp.root.get('0') as KDevFile, O_RDWR);
  t.ok(g, 'the group node opens while its device is being removed (the kernel removes the group after the wait)');
  t.equal(await errnoOf(g.read(0, 1)), 'ENODEV', 'but the device cannot be opened through it');
  await other.close();
  await removingE;
  await g.release();
  const root = new KernfsRoot();
  const ro = root.devFile('ro', 0o400, { open: () => ({ read: () => Buffer.alloc(0), write: () => 0, release() {} }) });
  t.equal(await errnoOf(openDev(ro, O_RDWR)), 'EACCES', 'kernfs open check');
});

t.test('a close while the device open is still under way closes the device once it is open', async t => {
  const { h, type, vp, calls } = await setup();
  await h.core.create(type, uuid(1));
  const ops = h.core.parent('mtty')!.ops as { open?: (d: MdevDevice) => unknown };
  const open = ops.open!;
  let go!: () => void;
  const gate = new Promise<void>(r => (go = r));
  ops.open = async d => {
    await gate;
    return open(d);
  };
  const held = await openDev(vp.root.get('0') as KDevFile, O_RDWR);
  const access = held.read(0, 1).catch(() => 'failed');
  await sleep(10);
  const closed = held.release();
  go();
  await closed;
  await access;
  t.same(calls, ['open 1', 'close 1'], 'opened, then closed by the release');
  t.equal(h.core.vfio.openHandles, 0, 'no handle left behind');
  t.ok(await openDev(vp.root.get('0') as KDevFile, O_RDWR), 'the group is free again');
});

t.test('legacy: the vendor refuses the remove of a device opened through the group', async t => {
  const h = harness('legacy');
  let open = 0;
  const { type } = await register(h, 'gvt', {
    open() {
      open++;
    },
    close() {
      open--;
    },
    read: () => Buffer.alloc(1),
    remove() {
      if (open) throw { errno: 'EBUSY' };
    },
    getAvailable: () => 4,
  });
  const vp = new VfioDevPresenter(h.core).attach();
  const d = await h.core.create(type, uuid(1));
  const held = await openDev(vp.root.get('0') as KDevFile, O_RDWR);
  t.equal(open, 0, 'the group claimed, the device not open');
  await held.read(0, 1);
  t.equal(open, 1, 'opened by the first access');
  t.equal(await errnoOf(removeStore(h.core, d, '1')), 'EBUSY');
  t.equal(d.state, 'active');
  t.ok(d.hasRemoveFile);
  await held.release();
  t.equal(open, 0);
  await removeStore(h.core, d, '1');
  t.equal(d.state, 'gone');
  t.same(vp.groups(), []);
});

t.test('the FUSE ops table: a device file through open/read/write/release', async t => {
  const { h, type, vp, calls } = await setup();
  await h.core.create(type, uuid(1));
  const ops = createOperations(vp.root) as unknown as Record<string, (...a: unknown[]) => void>;
  const call = (op: string, ...args: unknown[]) => new Promise<unknown[]>(resolve => ops[op]!(...args, (...r: unknown[]) => resolve(r)));
  t.match(await call('getattr', '/0'), [0, { mode: 0o100600, size: 0 }]);
  const [code, fd] = (await call('open', '/0', O_RDWR)) as [number, number];
  t.equal(code, 0);
  t.same(calls, [], 'open claims the group only');
  t.same(await call('open', '/0', O_RDWR), [-16], 'EBUSY: the group is claimed');
  const buf = Buffer.alloc(64);
  const [n] = (await call('read', '/0', fd, buf, 64, 7 * 2 ** 40)) as [number];
  t.equal(buf.subarray(0, n).toString(), `${7 * 2 ** 40}/64`, 'position passed through, no snapshot');
  t.same(await call('write', '/0', fd, Buffer.from('abc'), 3, 5 * 2 ** 40 + 1), [3]);
  t.same(calls.at(-1), `write ${5 * 2 ** 40 + 1} abc`, 'write position passed through');
  t.same(await call('release', '/0', fd), [0]);
  t.same(calls.at(-1), 'close 1', 'release closed the device before answering');
  t.same(await call('read', '/0', fd, buf, 64, 0), [-9], 'EBADF after release');
  const [again, fd2] = (await call('open', '/0', O_RDWR)) as [number, number];
  t.equal(again, 0, 'the group is free again');
  t.same(await call('release', '/0', fd2), [0]);
  t.same(await call('open', '/7', O_RDWR), [-2], 'ENOENT');
});
