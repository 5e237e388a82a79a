import t from 'tap';
import type { MdevHost, Parent, VendorPlugin } from '../../src/core/api.js';
import { MdevCore } from '../../src/core/core.js';
import { MdevError } from '../../src/core/errno.js';
import { deferred, errnoOf, harness, ops, register, spec, tick, uuid } from './helpers.js';

function plugin(name: string, extra: Partial<VendorPlugin> = {}): VendorPlugin {
  return {
    name,
    async init(mdev) {
      await mdev.registerDriver({ name: `${name}_drv` });
      await mdev.registerDevice(spec(name), ops({ driver: `${name}_drv` }));
      await mdev.registerDevice(spec(`${name}2`), ops({ driver: `${name}_implicit` }));
    },
    ...extra,
  };
}

t.test('loadPlugin / unloadPlugin: exit, then leftovers go, parents before drivers', async t => {
  const h = harness();
  const calls: string[] = [];
  await h.core.loadPlugin(
    plugin('mtty', {
      exit: () => {
        calls.push('exit');
      },
    }),
  );
  t.same(h.core.plugins(), ['mtty']);
  t.same(
    [...h.core.parents()].map(p => p.name),
    ['mtty', 'mtty2'],
  );
  t.same(h.core.drivers(), ['mtty_drv', 'mtty_implicit']);
  const { type } = { type: h.core.parent('mtty')!.types[0]! };
  await h.core.create(type, uuid(1));
  h.changes.length = 0;
  await h.core.unloadPlugin('mtty');
  t.same(calls, ['exit']);
  t.same(
    h.changes
      .filter(c => c.kind !== 'device' && !c.kind.startsWith('group'))
      .map(c => `${c.kind} ${'parent' in c ? c.parent.name : 'driver' in c ? c.driver : ''}`),
    ['parent-removed mtty2', 'parent-removed mtty', 'driver-removed mtty_implicit', 'driver-removed mtty_drv'],
    'reverse registration order',
  );
  t.same([...h.core.parents()], []);
  t.same(h.core.drivers(), []);
  t.same(h.core.plugins(), []);
  t.equal(await errnoOf(h.core.unloadPlugin('mtty')), 'ENOENT');
});

t.test('a plugin that cleans up after itself leaves nothing for the core to do', async t => {
  const h = harness();
  let parent: Parent | undefined;
  await h.core.loadPlugin({
    name: 'tidy',
    async init(m) {
      parent = await m.registerDevice(spec('tidy'), ops({ driver: 'tidy' }));
    },
    async exit(m) {
      await m.unregisterDevice(parent!);
      await m.unregisterDriver('tidy');
    },
  });
  await h.core.unloadPlugin('tidy');
  t.same(h.logs, [], 'no double-unregister errors');
  t.same(h.core.drivers(), []);
});

t.test('a throwing init: a clear error naming the plugin, nothing left registered', async t => {
  const h = harness();
  const err = await h.core
    .loadPlugin({
      name: 'broken',
      async init(m) {
        await m.registerDriver({ name: 'broken_drv' });
        await m.registerDevice(spec('broken'), ops({ driver: 'broken_implicit' }));
        throw new MdevError('ENOSPC', 'out of ports');
      },
    })
    .then(
      () => undefined,
      (e: unknown) => e as MdevError,
    );
  t.ok(err instanceof MdevError);
  t.equal(err!.errno, 'ENOSPC');
  t.match(err!.message, /plugin broken: init: out of ports/);
  t.same([...h.core.parents()], []);
  t.same(h.core.drivers(), []);
  t.same(h.core.plugins(), []);
  const plain = await errnoOf(
    h.core.loadPlugin({
      name: 'p2',
      init() {
        throw new Error('x');
      },
    }),
  );
  t.equal(plain, 'EIO');
  await h.core.loadPlugin(plugin('broken'));
  t.pass('the name is free again');
});

t.test('a hanging init times out; its late registrations are refused', async t => {
  const h = harness('modern', { callTimeoutMs: 20 });
  const gate = deferred();
  let lateResult: string | undefined = 'not run';
  t.equal(
    await errnoOf(
      h.core.loadPlugin({
        name: 'slow',
        async init(m) {
          await gate.promise;
          lateResult = await errnoOf(m.registerDevice(spec('slow'), ops({ driver: 'slow' })));
        },
      }),
    ),
    'ETIMEDOUT',
  );
  gate.resolve();
  await tick(5);
  t.equal(lateResult, 'ENODEV');
  t.same([...h.core.parents()], []);
});

t.test('plugin argument checks', async t => {
  const h = harness();
  t.equal(await errnoOf(h.core.loadPlugin({ name: '', init() {} })), 'EINVAL');
  t.equal(await errnoOf(h.core.loadPlugin({ name: 'x' } as VendorPlugin)), 'EINVAL');
  t.equal(await errnoOf(h.core.loadPlugin(null as unknown as VendorPlugin)), 'EINVAL');
  await h.core.loadPlugin({ name: 'x', init() {} });
  t.equal(await errnoOf(h.core.loadPlugin({ name: 'x', init() {} })), 'EEXIST');
});

t.test('unloadPlugin is EBUSY while one of its devices is open; exit errors are logged', async t => {
  const h = harness();
  await h.core.loadPlugin(
    plugin('mtty', {
      exit() {
        throw new Error('exit failed');
      },
    }),
  );
  await h.core.create(h.core.parent('mtty')!.types[0]!, uuid(1));
  const fd = await h.core.vfio.open(uuid(1));
  t.equal(await errnoOf(h.core.unloadPlugin('mtty')), 'EBUSY');
  t.same(h.core.plugins(), ['mtty']);
  await fd.close();
  await Promise.all([h.core.unloadPlugin('mtty'), h.core.unloadPlugin('mtty')]);
  t.match(h.logs.join('\n'), /plugin mtty: exit: exit failed/);
  t.same([...h.core.devices()], []);
});

for (const profile of ['modern', 'legacy'] as const) {
  t.test(`${profile}: shutdown closes handles, unloads in reverse, clears direct registrations`, async t => {
    const h = harness(profile);
    const order: string[] = [];
    await h.core.loadPlugin(
      plugin('a', {
        exit: () => {
          order.push('a');
        },
      }),
    );
    await h.core.loadPlugin(
      plugin('b', {
        exit: () => {
          order.push('b');
        },
      }),
    );
    await register(h, 'direct');
    await h.core.host.registerDriver({ name: 'direct_drv' });
    await h.core.create(h.core.parent('a')!.types[0]!, uuid(1));
    await h.core.create(h.core.parent('direct')!.types[0]!, uuid(2));
    const fd = await h.core.vfio.open(uuid(1));
    await h.core.shutdown();
    t.same(order, ['b', 'a']);
    t.equal(fd.device.openCount, 0);
    t.same([...h.core.devices()], []);
    t.same([...h.core.parents()], []);
    t.same([...h.core.iommuGroups()], []);
    t.same(h.core.drivers(), profile === 'legacy' ? ['vfio_mdev'] : []);
    t.same(h.core.plugins(), []);
  });
}

t.test('a plugin callback re-entering the host under the lock gets EDEADLK, not a hang', async t => {
  const h = harness('modern', { callTimeoutMs: 2000 });
  let host: MdevHost | undefined;
  let later: Promise<string | undefined> | undefined;
  await h.core.loadPlugin({
    name: 'reentrant',
    async init(m) {
      host = m;
    },
  });
  const { type } = await register(h, 'mtty', {
    async create() {
      await host!.registerDriver({ name: 'inner' });
    },
  });
  const lateRemove = () => {
    // From a timer, after the lock is gone: allowed.
    later = new Promise(r => setTimeout(() => r(errnoOf(host!.registerDriver({ name: 'later' }))), 5));
  };
  const start = Date.now();
  t.equal(await errnoOf(h.core.create(type, uuid(1))), 'EDEADLK');
  t.ok(Date.now() - start < 1000, 'failed fast');
  t.notOk(h.core.drivers().includes('inner'));
  const p2 = await register(h, 'mdpy', { maxInstances: 2, remove: lateRemove });
  const d = await h.core.create(p2.type, uuid(2));
  await h.core.remove(d);
  t.ok(later, 'the remove callback ran');
  t.equal(await later, undefined, 'a host call made after the lock was released works');
  t.ok(h.core.drivers().includes('later'));
});

t.test('a throwing listener cannot tear a transition in half', async t => {
  const h = harness();
  h.core.on('change', () => {
    throw new Error('listener bug');
  });
  h.core.on('uevent', () => {
    throw new Error('listener bug 2');
  });
  const { type } = await register(h);
  const d = await h.core.create(type, uuid(1));
  t.equal(d.state, 'active');
  await h.core.remove(d);
  t.equal(d.state, 'gone');
  t.match(h.logs.join('\n'), /'change' listener threw: listener bug/);
});

t.test('constructor options', async t => {
  t.equal(new MdevCore().profile, 'modern');
  t.equal(new MdevCore().callTimeoutMs, 5000);
  t.equal(await errnoOf(() => new MdevCore({ profile: 'x' as 'modern' })), 'EINVAL');
  t.equal(await errnoOf(() => new MdevCore({ callTimeoutMs: 0 })), 'EINVAL');
  t.equal(await errnoOf(() => new MdevCore({ callTimeoutMs: Number.NaN })), 'EINVAL');
  t.equal(new MdevCore({ profile: 'legacy' }).host.profile, 'legacy');
});

t.test('host.log goes out on the log event, prefixed by the plugin', async t => {
  const h = harness();
  await h.core.loadPlugin({
    name: 'chatty',
    init(m) {
      m.log('hello');
    },
  });
  h.core.host.log('direct');
  t.same(h.logs, ['chatty: hello', 'direct']);
});
