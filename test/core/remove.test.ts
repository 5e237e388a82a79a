import t from 'tap';
import type { Profile } from '../../src/core/api.js';
import { MdevError } from '../../src/core/errno.js';
import { actions, clear, deferred, deviceTimeline, errnoOf, harness, register, tick, uuid } from './helpers.js';

const P = '/devices/virtual/mtty/mtty';

t.test('modern remove: order of states, callbacks and uevents', async t => {
  const h = harness();
  const calls: string[] = [];
  await h.core.host.registerDriver({
    name: 'mtty',
    remove: d => {
      calls.push(`drv-remove grp=${d.iommuGroup}`);
    },
  });
  const { type } = await register(h, 'mtty', {
    remove: d => {
      calls.push(`vendor-remove ${(d as { state?: string }).state}`);
    },
  });
  const dev = await h.core.create(type, uuid(1));
  clear(h);
  await h.core.remove(dev);
  t.same(calls, ['vendor-remove removing', 'drv-remove grp=0']);
  t.same(deviceTimeline(h, dev), [
    'removing: removing drv=mtty grp=0 vfiogrp=0 vfio0',
    // __device_release_driver up to the wait: vfio_device_del took vfio-dev/vfio0.
    'releasing: removing drv=mtty grp=0 vfiogrp=0',
    'unbound: removing grp=0',
    'group-removed 0',
    'removed: gone',
  ]);
  // docs/abi.md#uevent-order: vfio-dev/vfio<k>, then the group char device, before the unbind.
  t.same(
    h.uevents,
    [
      {
        ACTION: 'remove',
        DEVPATH: `${P}/${uuid(1)}/vfio-dev/vfio0`,
        SUBSYSTEM: 'vfio-dev',
        MAJOR: '510',
        MINOR: '0',
        DEVNAME: 'vfio/devices/vfio0',
        SEQNUM: 7,
      },
      { ACTION: 'remove', DEVPATH: '/devices/virtual/vfio/0', SUBSYSTEM: 'vfio', MAJOR: '511', MINOR: '0', DEVNAME: 'vfio/0', SEQNUM: 8 },
      { ACTION: 'unbind', DEVPATH: `${P}/${uuid(1)}`, SUBSYSTEM: 'mdev', SEQNUM: 9 },
      { ACTION: 'remove', DEVPATH: `${P}/${uuid(1)}`, SUBSYSTEM: 'mdev', SEQNUM: 10 },
    ],
    'unbind carries no DRIVER: the driver is cleared before KOBJ_UNBIND',
  );
  t.same([dev.vfioDevIndex, dev.vfioGroupMinor], [undefined, undefined]);
  t.equal(h.core.device(uuid(1)), undefined);
  t.same([...h.core.devicesOfType(type)], []);
  t.same([...h.core.iommuGroups()], []);
});

t.test('legacy remove: vendor remove first, only a remove uevent', async t => {
  const h = harness('legacy');
  const calls: string[] = [];
  const { type } = await register(h, 'mtty', {
    remove: d => {
      calls.push(`vendor-remove grp=${d.iommuGroup}`);
    },
  });
  const dev = await h.core.create(type, uuid(1));
  clear(h);
  await h.core.remove(dev);
  t.same(calls, ['vendor-remove grp=0']);
  // vfio_mdev's remove (vfio_del_group_dev) takes the group char device first.
  t.same(actions(h.uevents), ['remove /devices/virtual/vfio/0', `remove ${P}/${uuid(1)}`]);
  t.same(deviceTimeline(h, dev), [
    'removing: removing drv=vfio_mdev grp=0 vfiogrp=0',
    'releasing: removing drv=vfio_mdev grp=0 vfiogrp=0',
    'unbound: removing grp=0',
    'group-removed 0',
    'removed: gone',
  ]);
});

t.test('legacy veto: EBUSY, and the remove file comes back', async t => {
  const h = harness('legacy');
  let veto = true;
  const { type } = await register(h, 'mtty', {
    remove() {
      if (veto) throw new MdevError('EBUSY', 'in use');
    },
  });
  const dev = await h.core.create(type, uuid(1));
  clear(h);
  t.equal(await errnoOf(h.core.removeSelf(dev)), 'EBUSY');
  t.same(deviceTimeline(h, dev), [
    'removing: removing drv=vfio_mdev grp=0 vfiogrp=0',
    'restored: active +remove +type drv=vfio_mdev grp=0 vfiogrp=0',
  ]);
  t.same(h.uevents, []);
  t.equal(dev.state, 'active');
  t.ok(dev.hasRemoveFile);
  t.ok(dev.typeLinked);
  veto = false;
  await h.core.remove(dev);
  t.equal(dev.state, 'gone');
});

t.test('legacy: any vendor remove failure is a veto (even EIO or a hang)', async t => {
  const h = harness('legacy', { callTimeoutMs: 20 });
  let mode: 'eio' | 'hang' = 'eio';
  const { type } = await register(h, 'mtty', {
    remove: () => (mode === 'eio' ? Promise.reject(new Error('x')) : new Promise<void>(() => {})),
  });
  const dev = await h.core.create(type, uuid(1));
  t.equal(await errnoOf(h.core.remove(dev)), 'EBUSY');
  mode = 'hang';
  t.equal(await errnoOf(h.core.remove(dev)), 'EBUSY');
  t.equal(dev.state, 'active');
});

t.test('modern: a vendor remove failure is only logged', async t => {
  const h = harness('modern', { callTimeoutMs: 20 });
  let mode: 'throw' | 'hang' = 'throw';
  const { type } = await register(h, 'mtty', {
    remove: () => (mode === 'throw' ? Promise.reject(new MdevError('EBUSY')) : new Promise<void>(() => {})),
  });
  const a = await h.core.create(type, uuid(1));
  const b = await h.core.create(type, uuid(2));
  await h.core.remove(a);
  mode = 'hang';
  await h.core.remove(b);
  t.equal(a.state, 'gone');
  t.equal(b.state, 'gone');
  t.match(h.logs.join('\n'), /EBUSY \(ignored: a remove cannot be vetoed\)/);
  t.match(h.logs.join('\n'), /did not settle within 20 ms/);
  t.equal(h.core.availableInstances(type), 4);
});

t.test('remove during create is EAGAIN; a second remove is EAGAIN; a racing store succeeds quietly', async t => {
  const h = harness();
  const gate = deferred();
  const removeGate = deferred();
  let slow = true;
  const { type } = await register(h, 'mtty', {
    create: async () => {
      if (slow) await gate.promise;
    },
    remove: async () => {
      await removeGate.promise;
    },
  });
  const creating = h.core.create(type, uuid(1));
  await tick();
  const dev = h.core.device(uuid(1))!;
  t.equal(dev.state, 'adding');
  t.equal(await errnoOf(h.core.remove(dev)), 'EAGAIN');
  t.ok(dev.hasRemoveFile, 'a programmatic remove leaves the file alone');
  t.equal(await errnoOf(h.core.removeSelf(dev)), 'EAGAIN');
  t.notOk(dev.hasRemoveFile, 'remove_store deleted its file before mdev_device_remove said EAGAIN');
  gate.resolve();
  await creating;
  t.equal(dev.state, 'active');
  t.notOk(dev.hasRemoveFile, 'the device stays, without remove, as in the kernel');
  slow = false;
  const removing = h.core.remove(dev);
  await tick();
  t.equal(dev.state, 'removing');
  t.equal(await errnoOf(h.core.remove(dev)), 'EAGAIN');
  t.equal(await errnoOf(h.core.removeSelf(dev)), undefined, 'remove file already gone: success, no effect');
  removeGate.resolve();
  await removing;
  t.equal(dev.state, 'gone');
});

t.test('legacy: a vendor remove that times out (EBUSY) but completes later: the core finishes the removal', async t => {
  const h = harness('legacy', { callTimeoutMs: 20 });
  const late = deferred();
  let calls = 0;
  const { type } = await register(h, 'mtty', {
    remove: () => {
      calls++;
      return late.promise;
    },
  });
  const dev = await h.core.create(type, uuid(1));
  const other = await h.core.create(type, uuid(2));
  clear(h);
  t.equal(await errnoOf(h.core.removeSelf(dev)), 'EBUSY');
  t.equal(dev.state, 'active');
  t.ok(dev.hasRemoveFile, 'remove is back after the refusal');
  late.resolve();
  for (let i = 0; i < 200 && dev.state !== 'gone'; i++) await tick();
  t.equal(dev.state, 'gone', 'the vendor let it go: so does the core');
  t.equal(h.core.device(uuid(1)), undefined);
  t.same(actions(h.uevents), ['remove /devices/virtual/vfio/0', `remove ${P}/${uuid(1)}`]);
  t.equal(calls, 1, 'the vendor remove is not called twice');
  t.match(h.logs.join('\n'), /remove\(.*\) completed after its timeout; removing the device/);
  t.equal(other.state, 'active', 'other devices untouched');
});

t.test('legacy: a late vendor remove after the device went another way changes nothing', async t => {
  const h = harness('legacy', { callTimeoutMs: 20 });
  const late = deferred();
  let first = true;
  const { type } = await register(h, 'mtty', {
    remove: () => {
      if (first) {
        first = false;
        return late.promise;
      }
      return undefined;
    },
  });
  const dev = await h.core.create(type, uuid(1));
  t.equal(await errnoOf(h.core.remove(dev)), 'EBUSY');
  await h.core.remove(dev);
  t.equal(dev.state, 'gone');
  const again = await h.core.create(type, uuid(1));
  late.resolve();
  for (let i = 0; i < 20; i++) await tick();
  t.equal(again.state, 'active', 'a new device of the same UUID is not the one the late remove was for');
});

for (const profile of ['modern', 'legacy'] as Profile[]) {
  t.test(`${profile}: remove waits for the last VFIO close without wedging the core`, async t => {
    const h = harness(profile);
    const calls: string[] = [];
    const { type } = await register(h, 'mtty', {
      remove: d => {
        if (d.uuid === uuid(1)) calls.push(`vendor-remove open=${(d as { openCount?: number }).openCount}`);
      },
      close: () => {
        calls.push('close');
      },
    });
    const dev = await h.core.create(type, uuid(1));
    const other = await h.core.create(type, uuid(2));
    const h1 = await h.core.vfio.open(uuid(1));
    const h2 = await h.core.vfio.open(uuid(1));
    let done = false;
    const removing = h.core.remove(dev).then(() => {
      done = true;
    });
    await tick(10);
    t.notOk(done, 'still waiting');
    t.equal(dev.state, 'removing');
    t.notOk(dev.hasRemoveFile);
    t.same(calls, profile === 'legacy' ? ['vendor-remove open=2'] : [], 'legacy calls the vendor first, modern after the close');
    // Everything else keeps working meanwhile.
    await h.core.create(type, uuid(3));
    await h.core.remove(other);
    t.equal(await errnoOf(h.core.vfio.open(uuid(1))), 'ENODEV', 'no new opens of a removing device');
    await h1.close();
    await tick(5);
    t.notOk(done, 'one handle still open');
    await h2.close();
    await h2.close();
    await removing;
    t.ok(done);
    t.same(calls, profile === 'legacy' ? ['vendor-remove open=2', 'close'] : ['close', 'vendor-remove open=0']);
    t.equal(dev.state, 'gone');
  });
}

t.test('remove on a parent being unregistered is ENODEV', async t => {
  const h = harness();
  const { type, parent } = await register(h);
  const a = await h.core.create(type, uuid(1));
  const b = await h.core.create(type, uuid(2));
  const handle = await h.core.vfio.open(a.uuid);
  const unreg = h.core.host.unregisterDevice(parent);
  await tick();
  t.equal(await errnoOf(h.core.remove(b)), 'ENODEV');
  await handle.close();
  await unreg;
  t.equal(b.state, 'gone');
});

t.test('legacy: removing an unbound device emits no unbind and frees no group', async t => {
  const h = harness('legacy');
  const { type } = await register(h);
  await h.core.host.unregisterDriver('vfio_mdev');
  const dev = await h.core.create(type, uuid(1));
  clear(h);
  await h.core.remove(dev);
  t.same(deviceTimeline(h, dev), ['removing: removing', 'removed: gone']);
  t.same(actions(h.uevents), [`remove ${P}/${uuid(1)}`]);
});

t.test('an object that is not a device of this core', async t => {
  const h = harness();
  const other = harness();
  const { type } = await register(other);
  const foreign = await other.core.create(type, uuid(1));
  t.equal(await errnoOf(h.core.remove(foreign)), 'ENODEV');
  t.equal(await errnoOf(h.core.removeSelf(foreign)), 'ENODEV');
});
