// A config registers all of its parents or none: a bad file never yields a
// plugin, and a registration that fails half-way is rolled back.
import t from 'tap';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MdevHost, Parent, ParentDeviceSpec, ParentOps } from '../../src/core/api.js';
import { MdevCore } from '../../src/core/core.js';
import { MdevError } from '../../src/core/errno.js';
import { compileConfig, ConfigError, loadConfigFile } from '../../src/config/index.js';
import { FIX, fixture } from './helpers.js';

const dir = await mkdtemp(join(tmpdir(), 'mdevfs-register-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));

const parent = (path: string) => ({
  path,
  typePrefix: 'mtty',
  driver: 'mtty',
  capacity: { model: 'fixed' },
  types: [{ id: '1', max: 1 }],
});

t.test('a bad file gives an error and registers nothing', async t => {
  const core = new MdevCore();
  const f = join(dir, 'half.json');
  // The first parent is fine; the second is not: nothing at all may appear.
  await writeFile(
    f,
    JSON.stringify({
      parents: [parent('devices/virtual/mtty/ok'), { ...parent('devices/virtual/mtty/bad'), capacity: { model: 'pool' } }],
    }),
  );
  let err: unknown;
  try {
    await core.loadPlugin(await loadConfigFile(f));
  } catch (e) {
    err = e;
  }
  t.ok(err instanceof ConfigError, 'a ConfigError, before any plugin exists');
  t.match((err as Error).message, 'parents[1].capacity.size: required when capacity.model is "pool"');
  t.match((err as Error).message, 'parents[1].types[0].cost: required when capacity.model is "pool"');
  t.same([...core.parents()], [], 'no parent registered');
  t.same(
    core.drivers().filter(d => d !== 'vfio_mdev'),
    [],
    'no driver registered',
  );
});

t.test('a registration failure half-way unregisters the parents already registered', async t => {
  const core = new MdevCore();
  await core.loadPlugin(compileConfig({ parents: [parent('devices/virtual/mtty/taken')] }, { name: 'first' }));
  const plugin = compileConfig(
    { parents: [parent('devices/virtual/mtty/fresh'), parent('devices/virtual/other/taken')] },
    { name: 'second' },
  );
  let err: unknown;
  try {
    await core.loadPlugin(plugin);
  } catch (e) {
    err = e;
  }
  t.ok(err, 'the second config fails to load');
  t.equal(core.parent('fresh'), undefined, 'its first parent is gone again');
  t.ok(core.parent('taken'), 'the other plugin is untouched');
  t.equal(core.parent('taken')!.device.path, 'devices/virtual/mtty/taken');
});

t.test('the plugin itself rolls back (not only the core)', async t => {
  const calls: string[] = [];
  const host: MdevHost = {
    profile: 'modern',
    async registerDriver() {},
    async unregisterDriver() {},
    async registerDevice<DD, PD>(device: ParentDeviceSpec, ops: ParentOps<DD, PD>): Promise<Parent<PD>> {
      calls.push(`register ${device.path}`);
      if (device.path.endsWith('/c')) throw new MdevError('EEXIST');
      return { name: device.path.split('/').pop()!, device, ops, types: [], drvdata: undefined };
    },
    async unregisterDevice(p: Parent | string) {
      calls.push(`unregister ${typeof p === 'string' ? p : p.device.path}`);
    },
    async addPciDevice() {
      throw new MdevError('ENOSYS');
    },
    async removePciDevice() {},
    async pinPages() {
      return [];
    },
    async unpinPages() {
      return 0;
    },
    log() {},
  };
  const plugin = compileConfig({ parents: ['a', 'b', 'c', 'd'].map(n => parent(`devices/virtual/x/${n}`)) });
  let err: unknown;
  try {
    await plugin.init(host);
  } catch (e) {
    err = e;
  }
  t.equal((err as MdevError).errno, 'EEXIST', 'the registration error propagates');
  t.same(calls, [
    'register devices/virtual/x/a',
    'register devices/virtual/x/b',
    'register devices/virtual/x/c',
    'unregister devices/virtual/x/b',
    'unregister devices/virtual/x/a',
  ]);
});

t.test('exit unregisters; a plugin can be unloaded and loaded again', async t => {
  const core = new MdevCore();
  const plugin = await loadConfigFile(FIX + 's390-host.json');
  await core.loadPlugin(plugin);
  t.same([...core.parents()].map(p => p.name).sort(), ['0.0.0313', 'matrix']);
  t.same(
    core
      .drivers()
      .filter(d => d !== 'vfio_mdev')
      .sort(),
    ['vfio_ap_mdev', 'vfio_ccw_mdev'],
  );
  await core.unloadPlugin(plugin.name);
  t.same([...core.parents()], []);
  await core.loadPlugin(plugin);
  t.equal([...core.parents()].length, 2, 'the same plugin object loads again with fresh state');
});

t.test('compileConfig takes a private copy of the document', async t => {
  const doc = await fixture('mtty-fixed.json');
  const plugin = compileConfig(doc);
  doc.parents[0]!.path = 'devices/virtual/changed/changed';
  const core = new MdevCore();
  await core.loadPlugin(plugin);
  t.ok(core.parent('mtty'), 'later edits of the document do not leak in');
});
