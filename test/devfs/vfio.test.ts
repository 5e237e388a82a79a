// The VFIO device files in memory: the presenter's files follow the core's
// IOMMU groups; a device file's open/read/write/release reach the plugin
// through core.vfio; the FUSE ops table treats the node as a device (per-open
// handle, position passed through, st_size 0). No mount here.
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

t.test('open, read and write at positions, release', async t => {
  const { h, type, vp, calls } = await setup();
  await h.core.create(type, uuid(1));
  const f = vp.root.get('0') as KDevFile;
  const a = await openDev(f, O_RDWR);
  const b = await openDev(f, O_RDONLY);
  t.same(calls, ['open 1'], "the plugin's open on the first open only");
  t.equal((await a.read(7 * 2 ** 40 + 3, 64)).toString(), `${7 * 2 ** 40 + 3}/64`);
  t.equal(await a.write(Buffer.from('xy'), 2 ** 52), 2);
  t.equal(await errnoOf(b.write(Buffer.from('x'), 0)), 'EBADF', 'read-only descriptor');
  t.equal(await errnoOf(a.read(2 ** 53, 1)), 'EINVAL', 'a position fuse-native cannot carry exactly');
  await a.release();
  await a.release();
  t.equal(await errnoOf(a.read(0, 1)), 'EBADF', 'released');
  t.same(calls, ['open 1', `write ${2 ** 52} xy`], 'one handle still open');
  await b.release();
  t.same(calls.at(-1), 'close 1', 'the last release closes the device');
  t.equal(h.core.vfio.openHandles, 0);
  t.equal(await errnoOf(openDev(f, O_WRONLY)), undefined, 'write-only open is allowed (0600)');
});

t.test('open errors: a plugin refusal, a device going away, mode bits', async t => {
  const { h, type, vp } = await setup();
  const d = await h.core.create(type, uuid(1));
  const f = vp.root.get('0') as KDevFile;
  (h.core.parent('mtty')!.ops as { open?: unknown }).open = () => {
    throw { errno: 'EBUSY' };
  };
  t.equal(await errnoOf(openDev(f, O_RDWR)), 'EBUSY');
  (h.core.parent('mtty')!.ops as { open?: unknown }).open = undefined;
  const held = await openDev(f, O_RDWR);
  const removing = h.core.remove(d);
  await sleep(20);
  t.equal(d.state, 'removing', 'modern: remove waits for the last close');
  t.ok(vp.root.get('0'), 'the file stays meanwhile');
  t.equal(await errnoOf(openDev(f, O_RDWR)), 'ENODEV', 'no new opens');
  await held.release();
  await removing;
  t.same(vp.groups(), []);
  t.equal(await errnoOf(openDev(f, O_RDWR)), 'ENOENT', 'a dead node');
  const root = new KernfsRoot();
  const ro = root.devFile('ro', 0o400, { open: () => ({ read: () => Buffer.alloc(0), write: () => 0, release() {} }) });
  t.equal(await errnoOf(openDev(ro, O_RDWR)), 'EACCES', 'kernfs open check');
});

t.test('legacy: the vendor refuses the remove of an open device', async t => {
  const h = harness('legacy');
  let open = 0;
  const { type } = await register(h, 'gvt', {
    open() {
      open++;
    },
    close() {
      open--;
    },
    remove() {
      if (open) throw { errno: 'EBUSY' };
    },
    getAvailable: () => 4,
  });
  const vp = new VfioDevPresenter(h.core).attach();
  const d = await h.core.create(type, uuid(1));
  const held = await openDev(vp.root.get('0') as KDevFile, O_RDWR);
  t.equal(await errnoOf(removeStore(h.core, d, '1')), 'EBUSY');
  t.equal(d.state, 'active');
  t.ok(d.hasRemoveFile);
  await held.release();
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
  const buf = Buffer.alloc(64);
  const [n] = (await call('read', '/0', fd, buf, 64, 7 * 2 ** 40)) as [number];
  t.equal(buf.subarray(0, n).toString(), `${7 * 2 ** 40}/64`, 'position passed through, no snapshot');
  t.same(await call('write', '/0', fd, Buffer.from('abc'), 3, 5 * 2 ** 40 + 1), [3]);
  t.same(calls.at(-1), `write ${5 * 2 ** 40 + 1} abc`, 'write position passed through');
  t.same(await call('release', '/0', fd), [0]);
  t.same(calls.at(-1), 'close 1', 'release closed the device before answering');
  t.same(await call('read', '/0', fd, buf, 64, 0), [-9], 'EBADF after release');
  t.same(await call('open', '/7', O_RDWR), [-2], 'ENOENT');
});
