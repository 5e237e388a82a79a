/** The control plane on the core (src/core/control.ts, faults.ts): unplug/plug, faults, another tenant's capacity, state. */
import t from 'tap';
import { actions, clear, errnoOf, harness, register, tick, uuid } from './helpers.js';

t.test('unplug removes the devices first, then MDEV_STATE=unregistered; plug registers the same parent again', async t => {
  const h = harness();
  const { parent, type } = await register(h);
  const a = await h.core.create(type, uuid(1));
  await h.core.create(parent.types[1]!, uuid(2));
  clear(h);
  await h.core.unplug('mtty');
  const evs = actions(h.uevents);
  const parentEv = h.uevents.findIndex(e => e.DEVPATH === '/devices/virtual/mtty/mtty');
  t.equal(parentEv, h.uevents.length - 1, "the parent's event is the last");
  t.equal(h.uevents[parentEv]!.MDEV_STATE, 'unregistered');
  t.equal(h.uevents[parentEv]!.ACTION, 'change');
  for (const u of [uuid(1), uuid(2)]) {
    t.ok(evs.includes(`remove /devices/virtual/mtty/mtty/${u}`), `${u} removed first`);
  }
  t.equal(h.core.parent('mtty'), undefined, 'the parent is gone');
  t.equal(a.state, 'gone');
  t.same([...h.core.devices()], []);
  t.same(
    h.core.controlState().parents.map(p => [p.name, p.state]),
    [['mtty', 'unplugged']],
  );
  t.equal(await errnoOf(h.core.unplug('mtty')), 'ENODEV', 'already unplugged');
  t.equal(await errnoOf(h.core.create(type, uuid(3))), 'ENODEV', 'no create on an unplugged parent');

  clear(h);
  await h.core.plug('mtty');
  t.same(
    h.uevents.map(e => [e.ACTION, e.DEVPATH, e.MDEV_STATE]),
    [['change', '/devices/virtual/mtty/mtty', 'registered']],
  );
  t.equal(h.core.parent('mtty'), parent, "the plugin's Parent handle is the parent again");
  t.equal(h.core.availableInstances(type), 4, 'capacity is whole again');
  await h.core.create(type, uuid(3));
  t.equal(await errnoOf(h.core.plug('mtty')), 'EEXIST', 'plugged already');
  t.equal(await errnoOf(h.core.plug('nope')), 'ENODEV');
  t.equal(await errnoOf(h.core.unplug('nope')), 'ENODEV');
  // The plugin's handle still unregisters it.
  await h.core.host.unregisterDevice(parent);
  t.equal(h.core.parent('mtty'), undefined);
});

t.test('fail create: the next N matching creates fail in the vendor place and leave nothing', async t => {
  const h = harness();
  let vendorCreates = 0;
  const { parent, type } = await register(h, 'mtty', {
    create() {
      vendorCreates++;
    },
  });
  const f = h.core.faults.add({ op: 'create', type: type.id, errno: 'EIO', count: 2 });
  t.equal(f.remaining, 2);
  clear(h);
  t.equal(await errnoOf(h.core.create(parent.types[1]!, uuid(1))), undefined, 'another type is not matched');
  t.equal(await errnoOf(h.core.create(type, uuid(2))), 'EIO');
  t.equal(await errnoOf(h.core.create(type, uuid(3))), 'EIO');
  t.equal(vendorCreates, 1, 'the vendor was not called for the failed ones');
  t.same(
    [...h.core.devices()].map(d => d.uuid),
    [uuid(1)],
    'nothing half-made',
  );
  t.equal(h.core.availableInstances(type), 3, 'the counter is back');
  const failed = actions(h.uevents).filter(e => e.includes(uuid(2)));
  t.equal(failed[0], `add /devices/virtual/mtty/mtty/${uuid(2)}`);
  t.equal(failed.at(-1), `remove /devices/virtual/mtty/mtty/${uuid(2)}`, 'the failed device is removed, as after a vendor failure');
  t.same(h.core.faults.list(), [], 'used up');
  t.equal(await errnoOf(h.core.create(type, uuid(4))), undefined, 'the third one succeeds');
});

t.test('fail with filters by uuid and parent; bad faults are EINVAL', async t => {
  const h = harness();
  const { type } = await register(h);
  const { type: other } = await register(h, 'mdpy');
  h.core.faults.add({ op: 'create', parent: 'mdpy', errno: 'ENOSPC' });
  h.core.faults.add({ op: 'create', uuid: uuid(9).toUpperCase(), errno: 'EPERM' });
  t.equal(await errnoOf(h.core.create(type, uuid(1))), undefined);
  t.equal(await errnoOf(h.core.create(other, uuid(2))), 'ENOSPC');
  t.equal(await errnoOf(h.core.create(type, uuid(9))), 'EPERM', 'a uuid filter matches in any case');
  for (const bad of [
    { op: 'frob' },
    { op: 'create' },
    { op: 'create', errno: 'ENOTANERRNO' },
    { op: 'create', errno: 'EIO', count: 0 },
    { op: 'create', delayMs: -1 },
    { op: 'create', errno: 'EIO', parent: '' },
  ]) {
    t.equal(await errnoOf(() => h.core.faults.add(bad as never)), 'EINVAL', JSON.stringify(bad));
  }
  const f = h.core.faults.add({ op: 'remove', errno: 'EBUSY' });
  h.core.faults.clear(f.id);
  t.equal(await errnoOf(() => h.core.faults.clear(f.id)), 'ENOENT');
  t.same(h.core.faults.list(), []);
});

t.test('fail remove: the device stays whole', async t => {
  const h = harness();
  let vendorRemoves = 0;
  const { type } = await register(h, 'mtty', {
    remove() {
      vendorRemoves++;
    },
  });
  const dev = await h.core.create(type, uuid(1));
  h.core.faults.add({ op: 'remove', uuid: uuid(1), errno: 'EBUSY' });
  clear(h);
  t.equal(await errnoOf(h.core.removeSelf(dev)), 'EBUSY');
  t.equal(dev.state, 'active');
  t.ok(dev.hasRemoveFile && dev.typeLinked && dev.boundDriver, 'remove file, type links and driver are all there');
  t.equal(vendorRemoves, 0);
  t.same(h.uevents, [], 'no uevent');
  t.equal(h.core.availableInstances(type), 3);
  await h.core.removeSelf(dev);
  t.equal(dev.state, 'gone', 'the next remove goes through');
  t.equal(vendorRemoves, 1);
});

t.test('unplug is not refused by a remove fault', async t => {
  const h = harness();
  const { type } = await register(h);
  await h.core.create(type, uuid(1));
  h.core.faults.add({ op: 'remove', errno: 'EBUSY' });
  await h.core.unplug('mtty');
  t.same([...h.core.devices()], []);
  t.equal(h.core.faults.list().length, 1, 'the fault is still pending');
});

t.test('fail open: the first open fails with the errno, the device is not opened', async t => {
  const h = harness();
  let opens = 0;
  const { type } = await register(h, 'mtty', {
    open() {
      opens++;
    },
  });
  const dev = await h.core.create(type, uuid(1));
  h.core.faults.add({ op: 'open', errno: 'ENXIO' });
  t.equal(await errnoOf(h.core.vfio.open(uuid(1))), 'ENXIO');
  t.equal(dev.openCount, 0);
  t.equal(opens, 0);
  const handle = await h.core.vfio.open(uuid(1));
  t.equal(opens, 1);
  await handle.close();
});

t.test('delay create: reads go on while the create waits; it then completes', async t => {
  const h = harness();
  const { type } = await register(h);
  h.core.faults.add({ op: 'create', delayMs: 300 });
  let settled = false;
  const creating = h.core.create(type, uuid(1)).finally(() => (settled = true));
  await tick();
  await tick();
  t.equal(h.core.device(uuid(1))?.state, 'adding', 'the device is being created');
  t.equal(h.core.availableInstances(type), 3, 'available_instances can be read meanwhile');
  t.notOk(settled, 'the create has not returned yet');
  await creating;
  t.equal(h.core.device(uuid(1))?.state, 'active');
});

t.test('delay and fail together: the errno after the wait', async t => {
  const h = harness();
  const { type } = await register(h);
  h.core.faults.add({ op: 'create', delayMs: 50, errno: 'EAGAIN' });
  t.equal(await errnoOf(h.core.create(type, uuid(1))), 'EAGAIN');
  t.same([...h.core.devices()], []);
});

t.test('set-available with the core counter: shared by the parent types, creates agree', async t => {
  const h = harness();
  const { parent, type } = await register(h);
  h.core.setAvailable(type, 1);
  t.equal(h.core.availableInstances(type), 1);
  t.equal(h.core.availableInstances(parent.types[1]!), 1, 'the counter is per parent');
  await h.core.create(type, uuid(1));
  t.equal(h.core.availableInstances(type), 0);
  t.equal(await errnoOf(h.core.create(parent.types[1]!, uuid(2))), 'EUSERS');
  t.equal(await errnoOf(h.core.create(type, uuid(1))), 'EEXIST', 'a duplicate is still EEXIST first');
  t.equal(await errnoOf(() => h.core.setAvailable(type, 4)), 'ERANGE', 'only 3 are left with nothing held');
  h.core.setAvailable(type, 3);
  t.equal(h.core.availableInstances(type), 3, 'given back');
  t.equal(h.core.controlState().parents[0]!.types[0]!.heldByTenant, 0);
  await h.core.create(type, uuid(2));
  t.equal(await errnoOf(() => h.core.setAvailable(type, -1)), 'EINVAL');
});

t.test("set-available with the vendor's getAvailable: per type, ENOSPC", async t => {
  const h = harness();
  let used = 0;
  const { parent, type } = await register(h, 'mtty', {
    maxInstances: undefined,
    getAvailable: () => 4 - used,
    create() {
      used++;
    },
    remove() {
      used--;
    },
  });
  h.core.setAvailable(type, 0);
  t.equal(h.core.availableInstances(type), 0);
  t.equal(h.core.availableInstances(parent.types[1]!), 4, 'the other type is not held');
  t.equal(await errnoOf(h.core.create(type, uuid(1))), 'ENOSPC');
  t.equal(used, 0, 'the vendor was not asked');
  t.same(h.core.controlState().parents[0]!.types[0]!.heldByTenant, 4);
  h.core.setAvailable(type, 2);
  await h.core.create(type, uuid(1));
  t.equal(h.core.availableInstances(type), 1);
});

t.test('controlState lists parents, types, devices, groups and faults', async t => {
  const h = harness();
  const { type } = await register(h);
  const dev = await h.core.create(type, uuid(1));
  h.core.faults.add({ op: 'store', errno: 'EIO', count: 3 });
  const s = h.core.controlState();
  t.equal(s.profile, 'modern');
  t.same(s.parents[0]!.types[0], { id: 'mtty-1', name: '1', available: 3, heldByTenant: 0, devices: [uuid(1)] });
  t.same(s.devices, [
    { uuid: uuid(1), parent: 'mtty', type: 'mtty-1', state: 'active', driver: 'mtty', iommuGroup: dev.iommuGroup, openCount: 0 },
  ]);
  t.same(s.groups, [{ id: dev.iommuGroup, devices: [uuid(1)] }]);
  t.same(s.faults, [{ id: 1, op: 'store', errno: 'EIO', remaining: 3 }]);
  t.same(JSON.parse(JSON.stringify(s)), s, 'JSON as it is');
});

t.test('unplug waits for an open device to be closed (vfio_unregister_group_dev)', async t => {
  const h = harness();
  const { type } = await register(h);
  await h.core.create(type, uuid(1));
  const handle = await h.core.vfio.open(uuid(1));
  let done = false;
  const unplugging = h.core.unplug('mtty').then(() => (done = true));
  await tick();
  await tick();
  t.notOk(done, 'still waiting');
  t.equal(h.core.device(uuid(1))?.state, 'removing');
  t.notOk(
    h.uevents.some(e => e.MDEV_STATE === 'unregistered'),
    'the parent is not announced gone yet',
  );
  await handle.close();
  await unplugging;
  t.equal(h.uevents.at(-1)?.MDEV_STATE, 'unregistered');
});

t.test('legacy profile: unplug and plug send no MDEV_STATE events (4.10 had none)', async t => {
  const h = harness('legacy');
  const { type } = await register(h);
  await h.core.create(type, uuid(1));
  clear(h);
  await h.core.unplug('mtty');
  t.same(
    h.uevents.map(e => e.ACTION),
    h.uevents.map(() => 'remove'),
  );
  t.ok(
    h.uevents.some(e => e.DEVPATH === `/devices/virtual/mtty/mtty/${uuid(1)}`),
    'the device went',
  );
  clear(h);
  await h.core.plug('mtty');
  t.same(h.uevents, []);
  t.equal(h.core.availableInstances(type), 4);
  await h.core.create(type, uuid(2));
});
