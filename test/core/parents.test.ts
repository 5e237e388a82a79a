import t from 'tap';
import type { ParentOps, Profile } from '../../src/core/api.js';
import { MdevError } from '../../src/core/errno.js';
import { actions, clear, errnoOf, harness, ops, register, spec, tick, uuid } from './helpers.js';

for (const profile of ['modern', 'legacy'] as Profile[]) {
  t.test(`${profile}: registerDevice refuses bad ops with EINVAL`, async t => {
    const h = harness(profile);
    const bad: Array<[string, Partial<ParentOps>]> = [
      ['no create', { create: undefined as unknown as ParentOps['create'] }],
      ['no remove', { remove: undefined as unknown as ParentOps['remove'] }],
      ['no types', { types: [] }],
      ['types not an array', { types: undefined as unknown as ParentOps['types'] }],
      ['empty type id', { types: [{ id: '' }] }],
      ['type id with a slash', { types: [{ id: 'a/b' }] }],
      ['bad deviceApi', { deviceApi: 'vfio-usb' as ParentOps['deviceApi'] }],
      ['bad type deviceApi', { types: [{ id: '1', deviceApi: 'x' as ParentOps['deviceApi'] }] }],
      ['negative maxInstances', { maxInstances: -1 }],
      ['fractional maxInstances', { maxInstances: 1.5 }],
      ['open not a function', { open: 3 as unknown as ParentOps['open'] }],
    ];
    for (const [what, extra] of bad) {
      t.equal(await errnoOf(h.core.host.registerDevice(spec(), ops(extra))), 'EINVAL', what);
    }
    for (const s of [{ path: '' }, { path: 'devices/../x' }, { typePrefix: '' }, { iommuGroup: -1 }]) {
      t.equal(await errnoOf(h.core.host.registerDevice(spec('mtty', s), ops())), 'EINVAL', JSON.stringify(s));
    }
    const noDriver = errnoOf(h.core.host.registerDevice(spec(), ops({ driver: '' })));
    t.equal(await noDriver, profile === 'modern' ? 'EINVAL' : undefined, 'ops.driver only matters to the modern profile');
    t.same(
      [...h.core.parents()].map(p => p.name),
      profile === 'modern' ? [] : ['mtty'],
      'nothing half-registered',
    );
  });

  t.test(`${profile}: duplicates are EEXIST`, async t => {
    const h = harness(profile);
    t.equal(await errnoOf(h.core.host.registerDevice(spec(), ops({ types: [{ id: '1' }, { id: '1' }] }))), 'EEXIST', 'duplicate type ids');
    await h.core.host.registerDevice(spec(), ops());
    t.equal(await errnoOf(h.core.host.registerDevice(spec(), ops())), 'EEXIST', 'same path');
    t.equal(
      await errnoOf(h.core.host.registerDevice({ ...spec(), path: '/devices/virtual/mtty/mtty/' }, ops())),
      'EEXIST',
      'same path, other spelling',
    );
    t.equal(await errnoOf(h.core.host.registerDevice({ ...spec(), path: 'devices/other/mtty' }, ops())), 'EEXIST', 'same name');
  });
}

t.test('parent and type objects', async t => {
  const h = harness();
  const parent = await h.core.host.registerDevice(
    { path: '/devices/pci0000:00/0000:00:02.0/', typePrefix: 'i915', subsystem: { bus: 'pci' }, driver: 'i915' },
    ops({ driver: 'intel_vgpu_mdev', types: [{ id: 'GVTg_V5_4' }, { id: 'GVTg_V5_8', name: 'Pretty', deviceApi: 'vfio-ccw' }] }),
  );
  t.equal(parent.name, '0000:00:02.0');
  t.equal(h.core.parent('0000:00:02.0'), parent);
  t.equal((parent as { devpath?: string }).devpath, '/devices/pci0000:00/0000:00:02.0');
  t.equal(parent.device.path, 'devices/pci0000:00/0000:00:02.0');
  t.same(
    parent.types.map(ty => [ty.id, ty.name, ty.deviceApi]),
    [
      ['i915-GVTg_V5_4', 'GVTg_V5_4', 'vfio-pci'],
      ['i915-GVTg_V5_8', 'Pretty', 'vfio-ccw'],
    ],
  );
  t.equal(parent.types[0]!.parent, parent);
  t.same(
    h.uevents,
    [
      // The vendor's mdev driver, which a real one registers before its parent (bus_add_driver).
      { ACTION: 'add', DEVPATH: '/bus/mdev/drivers/intel_vgpu_mdev', SUBSYSTEM: 'drivers', SEQNUM: 1 },
      {
        ACTION: 'change',
        DEVPATH: '/devices/pci0000:00/0000:00:02.0',
        SUBSYSTEM: 'pci',
        MDEV_STATE: 'registered',
        DRIVER: 'i915',
        SEQNUM: 2,
      },
    ],
    "the parent's own DRIVER rides along, as dev_uevent adds it",
  );
  t.same(Object.keys(h.uevents[1]!), ['ACTION', 'DEVPATH', 'SUBSYSTEM', 'MDEV_STATE', 'DRIVER', 'SEQNUM']);
  t.same(
    h.changes.map(c => c.kind),
    ['driver-added', 'parent-added'],
    'implicit driver first',
  );
  t.same(h.core.drivers(), ['intel_vgpu_mdev']);
});

t.test('modern: MDEV_STATE uevents; none for a parent without subsystem; legacy: none at all', async t => {
  const h = harness();
  const { parent } = await register(h);
  await h.core.host.registerDevice({ path: 'devices/platform/x', typePrefix: 'x' }, ops({ driver: 'x' }));
  await h.core.host.unregisterDevice('x');
  await h.core.host.unregisterDevice(parent);
  t.same(h.uevents, [
    { ACTION: 'add', DEVPATH: '/bus/mdev/drivers/mtty', SUBSYSTEM: 'drivers', SEQNUM: 1 },
    { ACTION: 'change', DEVPATH: '/devices/virtual/mtty/mtty', SUBSYSTEM: 'mtty', MDEV_STATE: 'registered', SEQNUM: 2 },
    { ACTION: 'add', DEVPATH: '/bus/mdev/drivers/x', SUBSYSTEM: 'drivers', SEQNUM: 3 },
    { ACTION: 'change', DEVPATH: '/devices/virtual/mtty/mtty', SUBSYSTEM: 'mtty', MDEV_STATE: 'unregistered', SEQNUM: 4 },
  ]);
  const l = harness('legacy');
  const r = await register(l);
  await l.core.host.unregisterDevice(r.parent);
  t.same(l.uevents, []);
  t.same(
    l.changes.map(c => c.kind),
    ['parent-added', 'parent-removed'],
    'legacy registers no implicit driver',
  );
});

for (const profile of ['modern', 'legacy'] as Profile[]) {
  t.test(`${profile}: unregisterDevice removes every child first, forcing`, async t => {
    const h = harness(profile);
    const vendorRemoves: string[] = [];
    const { type, parent } = await register(h, 'mtty', {
      remove(d) {
        vendorRemoves.push(d.uuid);
        throw new MdevError('EBUSY');
      },
    });
    await h.core.create(type, uuid(1));
    await h.core.create(parent.types[1]!, uuid(2));
    clear(h);
    await h.core.host.unregisterDevice('mtty');
    t.same(vendorRemoves, [uuid(1), uuid(2)], 'the veto is ignored');
    t.same([...h.core.devices()], []);
    t.equal(h.core.parent('mtty'), undefined);
    const P = '/devices/virtual/mtty/mtty';
    t.same(
      actions(h.uevents),
      profile === 'modern'
        ? [
            `remove ${P}/${uuid(1)}/vfio-dev/vfio0`,
            'remove /devices/virtual/vfio/0',
            `unbind ${P}/${uuid(1)}`,
            `remove ${P}/${uuid(1)}`,
            `remove ${P}/${uuid(2)}/vfio-dev/vfio1`,
            'remove /devices/virtual/vfio/1',
            `unbind ${P}/${uuid(2)}`,
            `remove ${P}/${uuid(2)}`,
            `change ${P}`,
          ]
        : ['remove /devices/virtual/vfio/0', `remove ${P}/${uuid(1)}`, 'remove /devices/virtual/vfio/1', `remove ${P}/${uuid(2)}`],
    );
    t.equal(h.changes.at(-1)!.kind, 'parent-removed');
    t.equal(parent.types.length, 2, 'the old parent object stays readable');
    t.equal(h.core.availableInstances(type), 0, 'a gone type has nothing available');
  });
}

t.test('unregisterDevice waits for open devices and is shared by concurrent callers', async t => {
  const h = harness();
  const { type, parent } = await register(h);
  await h.core.create(type, uuid(1));
  const handle = await h.core.vfio.open(uuid(1));
  let done = 0;
  const u1 = h.core.host.unregisterDevice(parent).then(() => {
    done++;
  });
  const u2 = h.core.host.unregisterDevice('mtty').then(() => {
    done++;
  });
  await tick(10);
  t.equal(done, 0);
  t.equal(h.core.parent('mtty')!.state, 'unregistering');
  // other parents are unaffected meanwhile
  const other = await register(h, 'mdpy');
  await h.core.create(other.type, uuid(2));
  await handle.close();
  await Promise.all([u1, u2]);
  t.equal(done, 2);
  t.equal(await errnoOf(h.core.host.unregisterDevice('mtty')), 'ENODEV', 'gone now');
  t.equal(await errnoOf(h.core.host.unregisterDevice(parent)), 'ENODEV');
});

t.test("a parent's own IOMMU group is reserved from the mdev allocator", async t => {
  const h = harness();
  const a = await register(h, 'mtty', {}, { iommuGroup: 0 });
  await register(h, 'mdpy', {}, { iommuGroup: 2 });
  const d1 = await h.core.create(a.type, uuid(1));
  const d2 = await h.core.create(a.type, uuid(2));
  t.same([d1.iommuGroup, d2.iommuGroup], [1, 3]);
  t.equal(await errnoOf(register(h, 'mbochs', {}, { iommuGroup: 3 })), 'EBUSY', 'held by a device');
  t.equal(h.core.parent('mbochs'), undefined);
  await h.core.host.unregisterDevice('mdpy');
  const d3 = await h.core.create(a.type, uuid(3));
  t.equal(d3.iommuGroup, 2, 'released with its parent');
  await register(h, 'gvt', {}, { iommuGroup: 0 });
  await h.core.host.unregisterDevice('gvt');
  const d4 = await h.core.create(a.type, uuid(4));
  t.equal(d4.iommuGroup, 4, 'group 0 is still reserved by mtty (shared reservations are counted)');
});

t.test('unregisterDevice of something unknown is ENODEV', async t => {
  const h = harness();
  t.equal(await errnoOf(h.core.host.unregisterDevice('nope')), 'ENODEV');
  const other = harness();
  const { parent } = await register(other);
  await register(h);
  t.equal(await errnoOf(h.core.host.unregisterDevice(parent)), 'ENODEV', "another core's parent of the same name");
});
