import t from 'tap';
import type { MdevDevice, Profile } from '../../src/core/api.js';
import { MdevError } from '../../src/core/errno.js';
import { actions, clear, deferred, deviceTimeline, errnoOf, harness, register, tick, uuid } from './helpers.js';

const P = '/devices/virtual/mtty/mtty';

t.test('modern create: state, change and uevent order', async t => {
  const h = harness();
  const seen: string[] = [];
  const { type } = await register(h, 'mtty', {
    create(dev) {
      seen.push(`create state=${(dev as { state?: string }).state} grp=${dev.iommuGroup}`);
    },
  });
  await h.core.host.unregisterDriver('mtty');
  await h.core.host.registerDriver({
    name: 'mtty',
    probe: dev => {
      seen.push(`probe grp=${dev.iommuGroup}`);
    },
  });
  clear(h);
  const dev = await h.core.create(type, uuid(1).toUpperCase());
  t.equal(dev.uuid, uuid(1), 'named lowercase');
  t.equal(dev.devpath, `${P}/${uuid(1)}`);
  t.same(seen, ['probe grp=0', 'create state=adding grp=0'], 'probe before create, both after the group');
  t.same(h.uevents, [
    { ACTION: 'add', DEVPATH: `${P}/${uuid(1)}`, SUBSYSTEM: 'mdev', SEQNUM: 5 },
    // docs/abi.md#uevent-order: during probe, the VFIO group char device, then vfio-dev/vfio<k>
    { ACTION: 'add', DEVPATH: '/devices/virtual/vfio/0', SUBSYSTEM: 'vfio', MAJOR: '511', MINOR: '0', DEVNAME: 'vfio/0', SEQNUM: 6 },
    {
      ACTION: 'add',
      DEVPATH: `${P}/${uuid(1)}/vfio-dev/vfio0`,
      SUBSYSTEM: 'vfio-dev',
      MAJOR: '510',
      MINOR: '0',
      DEVNAME: 'vfio/devices/vfio0',
      SEQNUM: 7,
    },
    { ACTION: 'bind', DEVPATH: `${P}/${uuid(1)}`, SUBSYSTEM: 'mdev', DRIVER: 'mtty', SEQNUM: 8 },
  ]);
  t.same(Object.keys(h.uevents[3]!), ['ACTION', 'DEVPATH', 'SUBSYSTEM', 'DRIVER', 'SEQNUM'], 'kernel key order');
  for (const i of [1, 2]) {
    t.same(
      Object.keys(h.uevents[i]!),
      ['ACTION', 'DEVPATH', 'SUBSYSTEM', 'MAJOR', 'MINOR', 'DEVNAME', 'SEQNUM'],
      'kernel key order (char device)',
    );
  }
  t.same(deviceTimeline(h, dev), [
    'added: adding +remove',
    'bound: adding +remove drv=mtty grp=0 vfiogrp=0 vfio0',
    // The vendor's create (its probe) has made the VFIO objects; really_probe adds dev_groups.
    'probed: adding +remove drv=mtty grp=0 vfiogrp=0 vfio0',
    'active: active +remove +type drv=mtty grp=0 vfiogrp=0 vfio0',
  ]);
  t.equal(dev.vfioDevIndex, 0);
  t.equal(dev.vfioGroupMinor, 0);
  t.equal(h.core.device(uuid(1).toUpperCase()), dev, 'lookup in any case');
  t.same([...h.core.devicesOfType(type)], [dev]);
  t.same([...h.core.devicesOfParent(type.parent)], [dev]);
  t.same([...h.core.iommuGroups()], [0]);
  t.same([...h.core.groupDevices(0)], [dev]);
  t.same([...h.core.groupDevices(1)], []);
});

t.test('legacy create: add only, remove file after the vendor create, vfio_mdev', async t => {
  const h = harness('legacy');
  t.same(h.core.drivers(), ['vfio_mdev'], 'vfio_mdev registered by the core');
  const { type } = await register(h);
  t.same(h.uevents, [], 'no MDEV_STATE in 4.10');
  const dev = await h.core.create(type, uuid(1));
  // vfio_mdev's probe (vfio_add_group_dev) makes the group char device, before the vendor's create.
  t.same(h.uevents, [
    { ACTION: 'add', DEVPATH: `${P}/${uuid(1)}`, SUBSYSTEM: 'mdev', SEQNUM: 1 },
    { ACTION: 'add', DEVPATH: '/devices/virtual/vfio/0', SUBSYSTEM: 'vfio', MAJOR: '511', MINOR: '0', DEVNAME: 'vfio/0', SEQNUM: 2 },
  ]);
  t.same(deviceTimeline(h, dev), [
    'added: adding',
    'bound: adding drv=vfio_mdev grp=0 vfiogrp=0',
    'probed: adding drv=vfio_mdev grp=0 vfiogrp=0',
    'active: active +remove +type drv=vfio_mdev grp=0 vfiogrp=0',
  ]);
  t.equal(dev.vfioGroupMinor, 0);
  t.equal(dev.vfioDevIndex, undefined, 'no vfio-dev class in 4.10');
});

for (const profile of ['modern', 'legacy'] as Profile[]) {
  t.test(`${profile}: duplicate UUID on the same parent is EEXIST`, async t => {
    const h = harness(profile);
    const { type, parent } = await register(h);
    await h.core.create(type, uuid(1));
    t.equal(await errnoOf(h.core.create(type, uuid(1).toUpperCase())), 'EEXIST');
    t.equal(await errnoOf(h.core.create(parent.types[1]!, uuid(1))), 'EEXIST', 'another type of the same parent');
  });
}

t.test('modern: duplicates are global, and checked before capacity', async t => {
  const h = harness();
  const a = await register(h, 'mtty', { maxInstances: 1 });
  const b = await register(h, 'mdpy', { maxInstances: 1 });
  await h.core.create(a.type, uuid(1));
  t.equal(h.core.availableInstances(a.type), 0);
  t.equal(await errnoOf(h.core.create(a.type, uuid(1))), 'EEXIST', 'full parent still says EEXIST');
  t.equal(await errnoOf(h.core.create(b.type, uuid(1))), 'EEXIST', 'clash with another parent');
  t.equal(h.core.availableInstances(b.type), 1, 'no capacity taken by the refused create');
  t.equal(await errnoOf(h.core.create(a.type, uuid(2))), 'EUSERS');
});

t.test('legacy: a clash with another parent fails EEXIST and leaves nothing', async t => {
  const h = harness('legacy');
  const a = await register(h, 'mtty');
  const b = await register(h, 'mdpy');
  let creates = 0;
  const c = await register(h, 'mbochs', {
    create() {
      creates++;
    },
  });
  await h.core.create(a.type, uuid(1));
  clear(h);
  t.equal(await errnoOf(h.core.create(b.type, uuid(1))), 'EEXIST');
  t.equal(await errnoOf(h.core.create(c.type, uuid(1))), 'EEXIST');
  t.equal(creates, 0, 'vendor create never ran');
  t.same(h.uevents, [], 'device_register failed before any uevent');
  t.same(h.changes, []);
  t.equal(h.core.device(uuid(1))!.parent, a.parent);
  t.same([...h.core.devicesOfParent(b.parent)], []);
});

t.test('modern capacity: one core counter per parent, shared by its types', async t => {
  const h = harness();
  const { parent } = await register(h, 'mtty', { maxInstances: 2 });
  const [t1, t2] = parent.types;
  t.equal(h.core.availableInstances(t1!), 2);
  const d1 = await h.core.create(t1!, uuid(1));
  t.equal(h.core.availableInstances(t1!), 1);
  t.equal(h.core.availableInstances(t2!), 1, 'every type shows the same number');
  await h.core.create(t2!, uuid(2));
  t.equal(await errnoOf(h.core.create(t1!, uuid(3))), 'EUSERS');
  t.equal(h.core.availableInstances(t2!), 0);
  await h.core.remove(d1);
  t.equal(h.core.availableInstances(t1!), 1, 'restored at release');
  await h.core.create(t1!, uuid(3));
});

t.test('modern capacity: no maxInstances and no getAvailable means 0 and EUSERS', async t => {
  const h = harness();
  const { type } = await register(h, 'mtty', { maxInstances: undefined });
  t.equal(h.core.availableInstances(type), 0);
  t.equal(await errnoOf(h.core.create(type, uuid(1))), 'EUSERS');
});

for (const profile of ['modern', 'legacy'] as Profile[]) {
  t.test(`${profile}: getAvailable means the core enforces nothing`, async t => {
    const h = harness(profile);
    let free = 1;
    const { type } = await register(h, 'mtty', {
      maxInstances: 0,
      getAvailable: () => free,
      create() {
        if (free < 1) throw new MdevError('ENOSPC');
        free--;
      },
      remove() {
        free++;
      },
    });
    t.equal(h.core.availableInstances(type), 1);
    const d = await h.core.create(type, uuid(1));
    t.equal(h.core.availableInstances(type), 0);
    t.equal(await errnoOf(h.core.create(type, uuid(2))), 'ENOSPC', 'the plugin refuses, with its own errno');
    await h.core.remove(d);
    t.equal(h.core.availableInstances(type), 1);
  });

  t.test(`${profile}: a bad getAvailable shows 0 (never negative) and logs`, async t => {
    const h = harness(profile);
    let mode: 'neg' | 'throw' | 'nan' | 'frac' | 'big' = 'neg';
    const { type } = await register(h, 'mtty', {
      getAvailable: () => {
        if (mode === 'throw') throw new Error('broken');
        return mode === 'neg' ? -5 : mode === 'nan' ? Number.NaN : mode === 'frac' ? 2.7 : 2 ** 40;
      },
    });
    t.equal(h.core.availableInstances(type), 0);
    mode = 'throw';
    t.equal(h.core.availableInstances(type), 0);
    t.match(h.logs.join('\n'), /getAvailable\(mtty-1\) threw: broken/);
    mode = 'nan';
    t.equal(h.core.availableInstances(type), 0);
    mode = 'frac';
    t.equal(h.core.availableInstances(type), 2);
    mode = 'big';
    t.equal(h.core.availableInstances(type), 0xffffffff, '%u');
  });
}

t.test('legacy capacity: informational only', async t => {
  const h = harness('legacy');
  const { type } = await register(h, 'mtty', { maxInstances: 2 });
  t.equal(h.core.availableInstances(type), 2);
  await h.core.create(type, uuid(1));
  await h.core.create(type, uuid(2));
  t.equal(h.core.availableInstances(type), 0);
  await h.core.create(type, uuid(3));
  t.equal(h.core.availableInstances(type), 0, 'never negative, never refused by the core');
  t.equal([...h.core.devices()].length, 3);
});

for (const profile of ['modern', 'legacy'] as Profile[]) {
  t.test(`${profile}: a failing vendor create leaves nothing behind`, async t => {
    const h = harness(profile, { callTimeoutMs: 50 });
    let fail: unknown;
    const { type } = await register(h, 'mtty', {
      maxInstances: 3,
      create() {
        if (fail) throw fail;
      },
    });
    const first = await h.core.create(type, uuid(1));
    t.equal(first.iommuGroup, 0);
    fail = new MdevError('ENOSPC');
    clear(h);
    t.equal(await errnoOf(h.core.create(type, uuid(2))), 'ENOSPC');
    t.equal(h.core.device(uuid(2)), undefined);
    t.same([...h.core.iommuGroups()], [0]);
    t.equal(h.core.availableInstances(type), profile === 'modern' ? 2 : 2, 'counter restored');
    if (profile === 'modern') {
      t.same(actions(h.uevents), [`add ${P}/${uuid(2)}`, `remove ${P}/${uuid(2)}`], 'add then remove, no bind');
      t.same(deviceTimeline(h, uuid(2)), [
        'added: adding +remove',
        'bound: adding +remove drv=mtty grp=1 vfiogrp=1 vfio1',
        'unbound: adding +remove grp=1',
        'group-removed 1',
        'removed: gone',
      ]);
    } else {
      // 4.10: the group char device came with vfio_mdev's probe and goes with its remove.
      t.same(
        actions(h.uevents),
        [`add ${P}/${uuid(2)}`, 'add /devices/virtual/vfio/1', 'remove /devices/virtual/vfio/1', `remove ${P}/${uuid(2)}`],
        'add, the group device, then removes; no bind',
      );
      t.same(deviceTimeline(h, uuid(2)), [
        'added: adding',
        'bound: adding drv=vfio_mdev grp=1 vfiogrp=1',
        'probed: adding drv=vfio_mdev grp=1 vfiogrp=1',
        'unbound: adding grp=1',
        'group-removed 1',
        'removed: gone',
      ]);
    }
    fail = new Error('plain error');
    t.equal(await errnoOf(h.core.create(type, uuid(3))), 'EIO', 'no errno → EIO');
    fail = { errno: 28 };
    t.equal(await errnoOf(h.core.create(type, uuid(3))), 'ENOSPC', 'numeric errno');
    fail = undefined;
    const d = await h.core.create(type, uuid(3));
    t.equal(d.iommuGroup, 1, 'group ids reused lowest-first');
  });
}

t.test('a rejecting and a hanging create; a late success is undone', async t => {
  const h = harness('modern', { callTimeoutMs: 30 });
  const late = deferred();
  const removed: string[] = [];
  let mode: 'reject' | 'hang' | 'ok' = 'reject';
  const { type } = await register(h, 'mtty', {
    create: async () => {
      if (mode === 'reject') throw new MdevError('ENODEV');
      if (mode === 'hang') await late.promise;
    },
    remove: dev => {
      removed.push(dev.uuid);
    },
  });
  t.equal(await errnoOf(h.core.create(type, uuid(1))), 'ENODEV');
  mode = 'hang';
  t.equal(await errnoOf(h.core.create(type, uuid(2))), 'ETIMEDOUT');
  t.equal(h.core.device(uuid(2)), undefined);
  t.equal(h.core.availableInstances(type), 4);
  t.same(removed, []);
  late.resolve();
  await tick(5);
  t.same(removed, [uuid(2)], 'ParentOps.remove called for the late create');
  t.match(h.logs.join('\n'), /completed after its timeout/);
  mode = 'ok';
  t.ok(await h.core.create(type, uuid(2)), 'the core is not wedged');
});

t.test('a failing probe: errno, no driver remove, group freed', async t => {
  const h = harness();
  const { type } = await register(h);
  await h.core.host.unregisterDriver('mtty');
  let driverRemoves = 0;
  let creates = 0;
  let probeErr: MdevError | undefined = new MdevError('ENODEV');
  await h.core.host.registerDriver({
    name: 'mtty',
    probe() {
      if (probeErr) throw probeErr;
    },
    remove() {
      driverRemoves++;
    },
  });
  const r = await register(h, 'mdpy', {
    driver: 'mtty',
    create() {
      creates++;
    },
  });
  t.equal(await errnoOf(h.core.create(r.type, uuid(1))), 'ENODEV');
  t.equal(creates, 0, 'vendor create not reached');
  t.equal(driverRemoves, 0, 'really_probe failure calls no remove');
  t.same([...h.core.iommuGroups()], []);
  probeErr = undefined;
  await h.core.create(type, uuid(2));
  t.equal(h.core.device(uuid(2))!.iommuGroup, 0);
});

t.test('a vendor create failing after a successful probe calls the driver remove', async t => {
  const h = harness();
  const calls: string[] = [];
  await h.core.host.registerDriver({
    name: 'mtty',
    probe() {
      calls.push('probe');
    },
    remove() {
      calls.push('drv-remove');
    },
  });
  const { type } = await register(h, 'mtty', {
    create() {
      calls.push('create');
      throw new MdevError('EIO');
    },
  });
  t.equal(await errnoOf(h.core.create(type, uuid(1))), 'EIO');
  t.same(calls, ['probe', 'create', 'drv-remove']);
  t.same(
    h.uevents.filter(e => e.ACTION === 'unbind' || e.ACTION === 'bind'),
    [],
    'never bound, so no unbind either',
  );
});

t.test("modern: the parent's driver not registered → ENODEV after add", async t => {
  const h = harness();
  const { type } = await register(h, 'mtty', { maxInstances: 1 });
  await h.core.host.unregisterDriver('mtty');
  h.uevents.length = 0;
  t.equal(await errnoOf(h.core.create(type, uuid(1))), 'ENODEV');
  t.same(actions(h.uevents), [`add ${P}/${uuid(1)}`, `remove ${P}/${uuid(1)}`]);
  t.equal(h.core.availableInstances(type), 1);
});

t.test('legacy: vfio_mdev not registered → created unbound, vendor create still runs', async t => {
  const h = harness('legacy');
  let creates = 0;
  const { type } = await register(h, 'mtty', {
    create() {
      creates++;
    },
  });
  await h.core.host.unregisterDriver('vfio_mdev');
  const dev = await h.core.create(type, uuid(1));
  t.equal(creates, 1);
  t.equal(dev.state, 'active');
  t.equal(dev.boundDriver, undefined);
  t.equal(dev.iommuGroup, undefined);
  t.same([...h.core.iommuGroups()], []);
  t.equal(await errnoOf(h.core.vfio.open(uuid(1))), 'ENODEV', 'no group to open it through');
});

t.test('create on a parent being unregistered is ENODEV; on a gone parent too', async t => {
  const h = harness();
  const { type, parent } = await register(h);
  const dev = await h.core.create(type, uuid(1));
  const handle = await h.core.vfio.open(dev.uuid);
  const unreg = h.core.host.unregisterDevice(parent);
  await tick();
  t.equal(h.core.parent('mtty')!.state, 'unregistering');
  t.equal(await errnoOf(h.core.create(type, uuid(2))), 'ENODEV');
  t.equal(h.core.availableInstances(type), 3, 'the refused create gave its count back');
  await handle.close();
  await unreg;
  t.equal(await errnoOf(h.core.create(type, uuid(3))), 'ENODEV', 'stale type');
  t.equal(h.core.availableInstances(type), 0);
});

for (const profile of ['modern', 'legacy'] as Profile[]) {
  t.test(`${profile}: 50 concurrent creates of one UUID → exactly one device`, async t => {
    const h = harness(profile);
    const { type } = await register(h, 'mtty', {
      maxInstances: 100,
      create: async () => {
        await tick();
      },
    });
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => errnoOf(h.core.create(type, i % 2 ? uuid(7) : uuid(7).toUpperCase()))),
    );
    t.equal(results.filter(r => r === undefined).length, 1);
    t.equal(results.filter(r => r === 'EEXIST').length, 49);
    t.equal([...h.core.devices()].length, 1);
    t.equal(h.uevents.filter(e => e.ACTION === 'add' && e.SUBSYSTEM === 'mdev').length, 1);
  });

  t.test(`${profile}: 100 concurrent creates on a plugin pool of 24 → exactly 24`, async t => {
    const h = harness(profile);
    let free = 24;
    const { type } = await register(h, 'mtty', {
      getAvailable: () => free,
      create: async () => {
        // A naive plugin: it awaits between check and take; the core's lock makes that safe.
        if (free < 1) throw new MdevError('ENOSPC');
        await tick();
        free--;
      },
    });
    const results = await Promise.all(Array.from({ length: 100 }, (_, i) => errnoOf(h.core.create(type, uuid(i + 1)))));
    t.equal(results.filter(r => r === undefined).length, 24);
    t.equal(results.filter(r => r === 'ENOSPC').length, 76);
    t.equal([...h.core.devices()].length, 24);
    t.equal(h.core.availableInstances(type), 0);
    t.same(
      [...h.core.iommuGroups()].sort((a, b) => a - b),
      Array.from({ length: 24 }, (_, i) => i),
      'groups 0..23',
    );
  });
}

t.test('modern: 100 concurrent creates on a core counter of 24 → exactly 24', async t => {
  const h = harness();
  const { type } = await register(h, 'mtty', {
    maxInstances: 24,
    create: async () => {
      await tick();
    },
  });
  const results = await Promise.all(Array.from({ length: 100 }, (_, i) => errnoOf(h.core.create(type, uuid(i + 1)))));
  t.equal(results.filter(r => r === undefined).length, 24);
  t.equal(results.filter(r => r === 'EUSERS').length, 76);
  t.equal(h.core.availableInstances(type), 0);
});

t.test('plugins see the device they are given', async t => {
  const h = harness();
  let got: MdevDevice | undefined;
  const { type, parent } = await register(h, 'mtty', {
    create(dev) {
      got = dev;
      dev.drvdata = { port: 3 };
    },
  });
  const dev = await h.core.create(type, uuid(1));
  t.equal(got, dev);
  t.equal(dev.type, type);
  t.equal(dev.parent, parent);
  t.same(dev.drvdata, { port: 3 });
});
