import t from 'tap';
import type { MdevDriver } from '../../src/core/api.js';
import { MdevError } from '../../src/core/errno.js';
import { actions, clear, deviceTimeline, errnoOf, harness, register, tick, uuid } from './helpers.js';

const P = '/devices/virtual/mtty/mtty';

t.test('registerDriver: EINVAL for a bad driver, EBUSY for a taken name', async t => {
  const h = harness();
  t.equal(await errnoOf(h.core.host.registerDriver({ name: '' })), 'EINVAL');
  t.equal(await errnoOf(h.core.host.registerDriver({} as MdevDriver)), 'EINVAL');
  t.equal(await errnoOf(h.core.host.registerDriver(undefined as unknown as MdevDriver)), 'EINVAL');
  t.equal(await errnoOf(h.core.host.registerDriver({ name: 'x', probe: 1 } as unknown as MdevDriver)), 'EINVAL');
  await h.core.host.registerDriver({ name: 'mtty' });
  t.equal(await errnoOf(h.core.host.registerDriver({ name: 'mtty' })), 'EBUSY');
  await register(h, 'mdpy', { driver: 'mdpy' });
  t.equal(await errnoOf(h.core.host.registerDriver({ name: 'mdpy' })), 'EBUSY', 'implicitly registered by registerDevice');
  t.equal(await errnoOf(h.core.host.unregisterDriver('nope')), 'ENODEV');
  t.same(h.core.drivers(), ['mtty', 'mdpy']);
  t.same(
    h.changes.map(c => c.kind),
    ['driver-added', 'driver-added', 'parent-added'],
  );
  const l = harness('legacy');
  t.equal(await errnoOf(l.core.host.registerDriver({ name: 'vfio_mdev' })), 'EBUSY');
});

t.test('modern: unregistering a driver unbinds its devices, which stay', async t => {
  const h = harness();
  const calls: string[] = [];
  await h.core.host.registerDriver({
    name: 'mtty',
    probe: d => {
      calls.push(`probe ${d.iommuGroup}`);
    },
    remove: d => {
      calls.push(`remove ${d.iommuGroup}`);
    },
  });
  const { type } = await register(h);
  const a = await h.core.create(type, uuid(1));
  const b = await h.core.create(type, uuid(2));
  clear(h);
  calls.length = 0;
  await h.core.host.unregisterDriver('mtty');
  t.same(calls, ['remove 0', 'remove 1']);
  t.same(actions(h.uevents), [
    `remove ${P}/${uuid(1)}/vfio-dev/vfio0`,
    'remove /devices/virtual/vfio/0',
    `unbind ${P}/${uuid(1)}`,
    `remove ${P}/${uuid(2)}/vfio-dev/vfio1`,
    'remove /devices/virtual/vfio/1',
    `unbind ${P}/${uuid(2)}`,
    // bus_remove_driver(): the driver's kobject goes last, after driver_detach.
    'remove /bus/mdev/drivers/mtty',
  ]);
  t.same(deviceTimeline(h, a), [
    'releasing: active +remove +type drv=mtty grp=0 vfiogrp=0',
    'unbound: active +remove +type grp=0',
    'group-removed 0',
    'group-removed 1',
  ]);
  t.equal(h.changes.at(-1)!.kind, 'driver-removed');
  t.same([a.state, a.boundDriver, a.iommuGroup, b.state], ['active', undefined, undefined, 'active']);
  t.same(h.core.drivers(), []);
  t.same([...h.core.iommuGroups()], []);
  t.equal(await errnoOf(h.core.vfio.open(a.uuid)), 'ENODEV', 'an unbound device cannot be opened');
  t.equal(await errnoOf(h.core.create(type, uuid(3))), 'ENODEV');

  // Registering it again binds the waiting devices.
  clear(h);
  calls.length = 0;
  await h.core.host.registerDriver({
    name: 'mtty',
    probe: d => {
      calls.push(`probe ${d.iommuGroup}`);
      if (d.uuid === uuid(2)) throw new MdevError('EIO');
    },
  });
  t.same(calls, ['probe 0', 'probe 1']);
  t.same(
    actions(h.uevents),
    ['add /devices/virtual/vfio/0', `add ${P}/${uuid(1)}/vfio-dev/vfio0`, `bind ${P}/${uuid(1)} mtty`, 'add /bus/mdev/drivers/mtty'],
    'a failed probe sends no bind (and gets no VFIO objects); the driver itself after driver_attach (bus_add_driver)',
  );
  t.same([a.vfioGroupMinor, a.vfioDevIndex, b.vfioGroupMinor, b.vfioDevIndex], [0, 0, undefined, undefined]);
  t.same([a.boundDriver, a.iommuGroup], ['mtty', 0]);
  t.same([b.boundDriver, b.iommuGroup], [undefined, undefined], 'probe failed: stays unbound');
  t.match(h.logs.join('\n'), /stays unbound/);
  await h.core.remove(a);
  await h.core.remove(b);
  t.same([...h.core.devices()], []);
});

t.test('legacy: vfio_mdev can be unplugged and replugged; no bind/unbind uevents', async t => {
  const h = harness('legacy');
  const { type } = await register(h);
  const a = await h.core.create(type, uuid(1));
  clear(h);
  await h.core.host.unregisterDriver('vfio_mdev');
  t.same([a.boundDriver, a.iommuGroup], [undefined, undefined]);
  const b = await h.core.create(type, uuid(2));
  t.equal(b.boundDriver, undefined);
  let probes = 0;
  await h.core.host.registerDriver({
    name: 'vfio_mdev',
    probe() {
      probes++;
    },
  });
  t.equal(probes, 2);
  t.same([a.iommuGroup, b.iommuGroup], [0, 1]);
  // vfio_mdev's remove/probe take the group char devices away and back: add/remove only.
  t.same(actions(h.uevents), [
    'remove /devices/virtual/vfio/0',
    'remove /bus/mdev/drivers/vfio_mdev',
    `add ${P}/${uuid(2)}`,
    'add /devices/virtual/vfio/0',
    'add /devices/virtual/vfio/1',
    'add /bus/mdev/drivers/vfio_mdev',
  ]);
  t.same([a.vfioGroupMinor, b.vfioGroupMinor], [0, 1]);
  await h.core.host.registerDriver({ name: 'mtty' });
  t.equal(a.boundDriver, 'vfio_mdev', 'a legacy parent only ever binds to vfio_mdev');
});

t.test('unregisterDriver waits for open devices; no new opens meanwhile', async t => {
  const h = harness();
  const { type } = await register(h);
  const a = await h.core.create(type, uuid(1));
  await h.core.create(type, uuid(2));
  const handle = await h.core.vfio.open(a.uuid);
  let done = false;
  const unreg = h.core.host.unregisterDriver('mtty').then(() => {
    done = true;
  });
  await tick(10);
  t.notOk(done);
  t.equal(await errnoOf(h.core.vfio.open(a.uuid)), 'ENODEV');
  t.equal(await errnoOf(h.core.create(type, uuid(3))), 'ENODEV', 'the driver is going away');
  t.same(h.core.drivers(), ['mtty'], 'still listed until detached');
  await handle.close();
  await unreg;
  t.ok(done);
  t.equal(a.boundDriver, undefined);
});

t.test('driver hot-plug racing creates and removes stays consistent', async t => {
  const h = harness();
  const { type } = await register(h, 'mtty', {
    maxInstances: 1000,
    create: async () => {
      await tick();
    },
  });
  const ops: Array<Promise<unknown>> = [];
  for (let i = 0; i < 40; i++) {
    ops.push(errnoOf(h.core.create(type, uuid(i + 1))));
    if (i % 10 === 3) ops.push(h.core.host.unregisterDriver('mtty'));
    if (i % 10 === 7) ops.push(errnoOf(h.core.host.registerDriver({ name: 'mtty' })));
  }
  await Promise.all(ops);
  for (const d of h.core.devices()) {
    t.equal(d.state, 'active');
    t.equal(d.boundDriver === undefined, d.iommuGroup === undefined, `${d.uuid}: bound iff it has a group`);
  }
  const groups = [...h.core.iommuGroups()];
  t.equal(new Set(groups).size, groups.length);
  t.equal(groups.length, [...h.core.devices()].filter(d => d.boundDriver).length);
  await h.core.shutdown();
  t.same([...h.core.devices()], []);
  t.same([...h.core.iommuGroups()], []);
});

t.test('modern: a device unbound through sysfs stays unbound when its driver comes back', async t => {
  const h = harness();
  let removes = 0;
  const { type } = await register(h, 'mtty', {
    remove() {
      removes++;
    },
  });
  const dev = await h.core.create(type, uuid(1));
  await h.core.unbindDevice(dev, 'mtty');
  t.equal(removes, 1, "the vendor's remove ran at the unbind");
  await h.core.host.unregisterDriver('mtty');
  await h.core.host.registerDriver({ name: 'mtty' });
  t.equal(dev.boundDriver, undefined, 'mdev_match() binds nothing: still unbound');
  t.equal(dev.iommuGroup, undefined);
  await h.core.remove(dev);
  t.equal(removes, 1, 'and its removal does not call the vendor again');
});

t.test('legacy: with drivers_autoprobe off, a new device is created unbound; drivers_probe binds it', async t => {
  const h = harness('legacy');
  const { type } = await register(h);
  h.core.autoprobe = false;
  const dev = await h.core.create(type, uuid(1));
  t.equal(dev.boundDriver, undefined, 'created unbound');
  await h.core.probeDevice(dev);
  t.equal(dev.boundDriver, 'vfio_mdev', 'drivers_probe binds it');
});
