// Capacity models of compiled configs, through the real core: create() and
// availableInstances() as the sysfs `create` and `available_instances` files
// use them. Plus the capacity pieces on their own.
import t from 'tap';
import { DeviceLedger, ParentCapacity, oneTypeAtATime, perTypeMax, sharedCount, sharedPool } from '../../src/config/capacity.js';
import { availability, parentOf, typeOf } from '../helpers/core.js';
import { createN, fixture, freshUuid, loaded, rejectsErrno } from './helpers.js';

const T4 = '0000:3b:00.0';
const GVT = '0000:00:02.0';

t.test('pool + one type at a time (T4 fixture)', async t => {
  const core = await loaded(await fixture('t4-host.json'));
  const fresh = {
    'nvidia-222': 16,
    'nvidia-223': 8,
    'nvidia-224': 8,
    'nvidia-225': 16,
    'nvidia-226': 8,
    'nvidia-227': 4,
    'nvidia-228': 2,
    'nvidia-229': 1,
    'nvidia-230': 16,
    'nvidia-231': 8,
    'nvidia-232': 4,
    'nvidia-233': 2,
    'nvidia-234': 1,
  };
  t.same(availability(core, T4), fresh, 'every type at its maximum');

  const t1b = typeOf(core, T4, 'nvidia-222');
  const devs = await createN(core, t1b, 3);
  const after3 = Object.fromEntries(Object.keys(fresh).map(k => [k, k === 'nvidia-222' ? 13 : 0]));
  t.same(availability(core, T4), after3, 'the running type shows what the pool allows, every other type 0');

  await rejectsErrno(t, core.create(typeOf(core, T4, 'nvidia-223'), freshUuid()), 'EINVAL', 'a second type (as examples/nvidia-vgpu.ts)');
  await rejectsErrno(
    t,
    core.create(typeOf(core, T4, 'nvidia-229'), freshUuid()),
    'EINVAL',
    'a type that would not fit either: the conflict wins',
  );
  t.same(availability(core, T4), after3, 'a refused create changes nothing');

  devs.push(...(await createN(core, t1b, 13)));
  t.equal(core.availableInstances(t1b), 0, 'pool used up');
  await rejectsErrno(t, core.create(t1b, freshUuid()), 'ENOSPC', 'the 17th 1B');

  for (const d of devs) await core.remove(d);
  t.same(availability(core, T4), fresh, 'removing the last vGPU restores every maximum');

  const big = await core.create(typeOf(core, T4, 'nvidia-229'), freshUuid());
  t.equal(core.availableInstances(typeOf(core, T4, 'nvidia-229')), 0);
  t.equal(core.availableInstances(t1b), 0);
  await rejectsErrno(t, core.create(typeOf(core, T4, 'nvidia-229'), freshUuid()), 'ENOSPC', 'a second 16A');
  await core.remove(big);
  t.same(availability(core, T4), fresh);
});

t.test('shared pool across types (GVT-g fixture)', async t => {
  const core = await loaded(await fixture('gvtg-host.json'));
  t.same(availability(core, GVT), { 'i915-GVTg_V5_8': 8, 'i915-GVTg_V5_4': 4, 'i915-GVTg_V5_2': 2, 'i915-GVTg_V5_1': 1 });
  await core.create(typeOf(core, GVT, 'i915-GVTg_V5_8'), freshUuid()); // 64 of 512
  t.same(
    availability(core, GVT),
    { 'i915-GVTg_V5_8': 7, 'i915-GVTg_V5_4': 3, 'i915-GVTg_V5_2': 1, 'i915-GVTg_V5_1': 0 },
    'one small vGPU lowers the other types unevenly: floor(free / cost)',
  );
  await rejectsErrno(t, core.create(typeOf(core, GVT, 'i915-GVTg_V5_1'), freshUuid()), 'ENOSPC', 'a type whose cost exceeds what is free');
  const v4 = await createN(core, typeOf(core, GVT, 'i915-GVTg_V5_4'), 3); // 448 of 512
  t.same(availability(core, GVT), { 'i915-GVTg_V5_8': 1, 'i915-GVTg_V5_4': 0, 'i915-GVTg_V5_2': 0, 'i915-GVTg_V5_1': 0 });
  await rejectsErrno(t, core.create(typeOf(core, GVT, 'i915-GVTg_V5_4'), freshUuid()), 'ENOSPC', 'pool exhausted for _4');
  await core.remove(v4[0]!);
  t.same(
    availability(core, GVT),
    { 'i915-GVTg_V5_8': 3, 'i915-GVTg_V5_4': 1, 'i915-GVTg_V5_2': 0, 'i915-GVTg_V5_1': 0 },
    'a remove gives its cost back',
  );
});

t.test('pool with a per-type cap', async t => {
  const core = await loaded({
    parents: [
      {
        path: 'devices/virtual/pooled/p0',
        typePrefix: 'pooled',
        driver: 'pooled',
        capacity: { model: 'pool', size: 10 },
        types: [
          { id: 'a', cost: 1, max: 3 },
          { id: 'b', cost: 2 },
        ],
      },
    ],
  });
  t.same(availability(core, 'p0'), { 'pooled-a': 3, 'pooled-b': 5 });
  await createN(core, typeOf(core, 'p0', 'pooled-a'), 3);
  t.same(availability(core, 'p0'), { 'pooled-a': 0, 'pooled-b': 3 }, 'a is capped by max though the pool has room');
  await rejectsErrno(t, core.create(typeOf(core, 'p0', 'pooled-a'), freshUuid()), 'ENOSPC', 'beyond max');
  await createN(core, typeOf(core, 'p0', 'pooled-b'), 3);
  t.same(availability(core, 'p0'), { 'pooled-a': 0, 'pooled-b': 0 });
  await rejectsErrno(t, core.create(typeOf(core, 'p0', 'pooled-b'), freshUuid()), 'ENOSPC', 'pool exhausted');
});

t.test('fixed per-type counts (mtty fixture)', async t => {
  const core = await loaded(await fixture('mtty-fixed.json'));
  t.same(availability(core, 'mtty'), { 'mtty-1': 24, 'mtty-2': 12 });
  const two = await createN(core, typeOf(core, 'mtty', 'mtty-2'), 12);
  t.same(availability(core, 'mtty'), { 'mtty-1': 24, 'mtty-2': 0 }, 'types are independent');
  await rejectsErrno(t, core.create(typeOf(core, 'mtty', 'mtty-2'), freshUuid()), 'ENOSPC', 'the 13th mtty-2');
  await core.remove(two[5]!);
  t.same(availability(core, 'mtty'), { 'mtty-1': 24, 'mtty-2': 1 });
  await core.create(typeOf(core, 'mtty', 'mtty-2'), freshUuid());
  t.equal(core.availableInstances(typeOf(core, 'mtty', 'mtty-2')), 0);
});

t.test('fixed + one type at a time, with chosen errnos', async t => {
  const core = await loaded({
    parents: [
      {
        path: 'devices/virtual/fx/fx',
        typePrefix: 'fx',
        driver: 'fx',
        capacity: { model: 'fixed', oneTypeAtATime: true, exhaustedErrno: 'EUSERS', conflictErrno: 'EBUSY' },
        types: [
          { id: 'a', max: 2 },
          { id: 'b', max: 1 },
          { id: 'z', max: 0 },
        ],
      },
    ],
  });
  t.same(availability(core, 'fx'), { 'fx-a': 2, 'fx-b': 1, 'fx-z': 0 });
  await rejectsErrno(t, core.create(typeOf(core, 'fx', 'fx-z'), freshUuid()), 'EUSERS', 'a type with max 0');
  const [a] = await createN(core, typeOf(core, 'fx', 'fx-a'), 1);
  t.same(availability(core, 'fx'), { 'fx-a': 1, 'fx-b': 0, 'fx-z': 0 });
  await rejectsErrno(t, core.create(typeOf(core, 'fx', 'fx-b'), freshUuid()), 'EBUSY', 'conflictErrno');
  await core.create(typeOf(core, 'fx', 'fx-a'), freshUuid());
  await rejectsErrno(t, core.create(typeOf(core, 'fx', 'fx-a'), freshUuid()), 'EUSERS', 'exhaustedErrno');
  t.ok(a);
});

t.test('core counter: maxInstances per parent, EUSERS (s390 fixture)', async t => {
  const core = await loaded(await fixture('s390-host.json'));
  t.same(availability(core, 'matrix'), { 'vfio_ap-passthrough': 65536 });
  t.same(availability(core, '0.0.0313'), { 'vfio_ccw-io': 1 });
  t.equal(parentOf(core, 'matrix').ops.maxInstances, 65536, 'compiled to the core counter, not a plugin rule');
  t.equal(parentOf(core, 'matrix').ops.getAvailable, undefined);
  const ccw = await core.create(typeOf(core, '0.0.0313', 'vfio_ccw-io'), freshUuid());
  t.same(availability(core, '0.0.0313'), { 'vfio_ccw-io': 0 });
  await rejectsErrno(t, core.create(typeOf(core, '0.0.0313', 'vfio_ccw-io'), freshUuid()), 'EUSERS', 'second device on a subchannel');
  await core.create(typeOf(core, 'matrix', 'vfio_ap-passthrough'), freshUuid());
  t.same(availability(core, 'matrix'), { 'vfio_ap-passthrough': 65535 }, 'parents count separately');
  await core.remove(ccw);
  t.same(availability(core, '0.0.0313'), { 'vfio_ccw-io': 1 });
});

t.test('core counter is shared by all types of a parent', async t => {
  const doc = {
    parents: [
      {
        path: 'devices/virtual/mdpy/mdpy',
        typePrefix: 'mdpy',
        driver: 'mdpy',
        subsystem: { class: 'mdpy' },
        capacity: { model: 'counter', maxInstances: 4 },
        types: [{ id: 'vga' }, { id: 'xga' }, { id: 'hd' }],
      },
    ],
  };
  for (const profile of ['modern', 'legacy'] as const) {
    const core = await loaded(doc, { profile });
    t.same(availability(core, 'mdpy'), { 'mdpy-vga': 4, 'mdpy-xga': 4, 'mdpy-hd': 4 }, profile);
    await createN(core, typeOf(core, 'mdpy', 'mdpy-vga'), 2);
    await createN(core, typeOf(core, 'mdpy', 'mdpy-hd'), 1);
    t.same(availability(core, 'mdpy'), { 'mdpy-vga': 1, 'mdpy-xga': 1, 'mdpy-hd': 1 }, `${profile}: any create lowers all`);
    await core.create(typeOf(core, 'mdpy', 'mdpy-xga'), freshUuid());
    await rejectsErrno(t, core.create(typeOf(core, 'mdpy', 'mdpy-xga'), freshUuid()), 'EUSERS', `${profile}: fifth device`);
    t.same(availability(core, 'mdpy'), { 'mdpy-vga': 0, 'mdpy-xga': 0, 'mdpy-hd': 0 });
  }
});

t.test('every parent of a config has its own capacity, and so has every core', async t => {
  const doc = await fixture('mtty-fixed.json');
  const other = structuredClone(doc);
  other.parents[0]!.path = 'devices/virtual/mtty/mtty2';
  const both = { parents: [doc.parents[0]!, other.parents[0]!] };
  const core = await loaded(both);
  await createN(core, typeOf(core, 'mtty', 'mtty-2'), 12);
  t.same(availability(core, 'mtty2'), { 'mtty-1': 24, 'mtty-2': 12 });
  const core2 = await loaded(both);
  t.same(availability(core2, 'mtty'), { 'mtty-1': 24, 'mtty-2': 12 }, 'a second core starts fresh');
});

// ---------------------------------------------------------------------------
// The pieces, without a core

/** The errno (and message) a synchronous call throws. */
function thrown(fn: () => void): { errno?: unknown; message?: string } | undefined {
  try {
    fn();
  } catch (e) {
    return e as { errno?: unknown; message?: string };
  }
  return undefined;
}

const A = { id: 'x-a' };
const B = { id: 'x-b' };
const dev = (uuid: string, type: { id: string }) => ({ uuid, type });

t.test('DeviceLedger', async t => {
  const l = new DeviceLedger();
  t.equal(l.add('u1', A), true);
  t.equal(l.add('u1', A), false, 'idempotent');
  l.add('u2', A);
  l.add('u3', B);
  t.equal(l.count(), 3);
  t.equal(l.count(A), 2);
  t.same(l.typesInUse().sort(), ['x-a', 'x-b']);
  t.equal(l.delete('u3'), true);
  t.equal(l.delete('u3'), false);
  t.same(l.typesInUse(), ['x-a']);
  t.equal(l.count(B), 0);
});

t.test('ParentCapacity: rules in order, claim/release', async t => {
  const cap = new ParentCapacity([oneTypeAtATime('EINVAL'), sharedPool(10, ty => (ty.id === 'x-a' ? 3 : 5))]);
  t.equal(cap.available(A), 3);
  t.equal(cap.available(B), 2);
  cap.claim(dev('u1', A));
  cap.claim(dev('u1', A)); // no double count
  t.equal(cap.available(A), 2);
  t.equal(cap.available(B), 0);
  t.equal(thrown(() => cap.claim(dev('u2', B)))?.errno, 'EINVAL');
  cap.claim(dev('u2', A));
  cap.claim(dev('u3', A));
  t.equal(cap.available(A), 0);
  const e = thrown(() => cap.claim(dev('u4', A)));
  t.equal(e?.errno, 'ENOSPC');
  t.match(e?.message, /needs 3 units, 1 of 10 free/);
  cap.release('u1');
  cap.release('nope');
  t.equal(cap.available(A), 1);
  for (const u of ['u2', 'u3']) cap.release(dev(u, A));
  t.equal(cap.available(B), 2, 'all released: other types come back');
});

t.test('perTypeMax, sharedCount, and no rules at all', async t => {
  const fixed = new ParentCapacity([perTypeMax(ty => (ty.id === 'x-a' ? 1 : undefined))]);
  t.equal(fixed.available(A), 1);
  t.equal(fixed.available(B), 0xffffffff, 'unconstrained shows UINT_MAX');
  fixed.claim(dev('u1', A));
  t.equal(thrown(() => fixed.claim(dev('u2', A)))?.errno, 'ENOSPC');
  const counted = new ParentCapacity([sharedCount(2)]);
  counted.claim(dev('u1', A));
  counted.claim(dev('u2', B));
  t.equal(counted.available(A), 0);
  t.equal(thrown(() => counted.claim(dev('u3', B)))?.errno, 'EUSERS');
  t.equal(new ParentCapacity([]).available(A), 0xffffffff);
});
