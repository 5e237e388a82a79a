// mount() from the package entry, in this very process: the files and the
// core are one state. Files are touched only from child processes (cat,
// echo, python) or with fs.promises: a synchronous call from this process
// would wait on the thread that has to answer it.
import t from 'tap';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { mount } from '../../src/index.js';
import plugin, { TA } from '../fixtures/test-plugin.js';
import { parentOf, typeOf } from '../helpers/core.js';
import { FIXTURES, isMounted, makeMountDir, sh } from '../helpers/daemon.js';
import { readOnce } from '../helpers/sys.js';
import { uuid } from '../helpers/util.js';

t.test('mount() with a plugin object: create and remove through the files and through the core', async t => {
  const dir = await makeMountDir(t);
  const m = await mount(dir, { drivers: [plugin] });
  t.teardown(() => m.unmount());
  t.equal(m.mountpoint, dir);
  t.ok(parentOf(m.core, 'mtest'), 'the core holds the plugin');

  const u1 = uuid(1);
  const create = await sh(`echo ${u1} > ${dir}/${TA}/create`);
  t.equal(create.code, 0, create.stderr);
  t.ok(m.core.device(u1), 'a create written to the file is in the core');
  t.equal(await readOnce(path.join(dir, 'bus/mdev/devices', u1, 'mdev_type/name')), 'Type A\n');

  const u2 = uuid(2);
  await m.core.create(typeOf(m.core, 'mtest', 'mtest-a'), u2);
  const ls = await sh(`ls ${dir}/${TA}/devices`);
  t.equal(ls.stdout, `${u1}\n${u2}\n`, 'a create through the core is in the files');
  t.equal(await fsp.readFile(path.join(dir, TA, 'available_instances'), 'utf8'), '1\n', 'fs.promises works from this process');

  const remove = await sh(`echo 1 > ${dir}/bus/mdev/devices/${u1}/remove`);
  t.equal(remove.code, 0, remove.stderr);
  t.notOk(m.core.device(u1), 'a remove written to the file leaves the core');

  await m.unmount();
  t.notOk(await isMounted(dir), 'unmounted');
  await m.unmount();
  t.pass('a second unmount() is harmless');
});

t.test('mount() with a driver path and the VFIO device files; errors are thrown, nothing mounted', async t => {
  const dir = await makeMountDir(t);
  const vfio = await makeMountDir(t);
  const m = await mount(dir, { drivers: [path.join(FIXTURES, 'test-plugin.ts')], vfioDir: vfio, profile: 'legacy' });
  t.teardown(() => m.unmount());
  t.equal(m.core.profile, 'legacy');
  t.equal(m.vfioDir, vfio);
  t.ok(await isMounted(vfio));
  await m.unmount();
  t.notOk(await isMounted(dir));
  t.notOk(await isMounted(vfio));

  await t.rejects(mount(dir, { drivers: [path.join(FIXTURES, 'init-fails.ts')] }), /driver init-fails failed to initialise/);
  t.notOk(await isMounted(dir));
});
