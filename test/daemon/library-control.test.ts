// The control plane from a Node test, in-process: mount() from the package
// entry, then the core's own control methods; the files (read from child
// processes) follow.
import t from 'tap';
import { mount } from '../../src/index.js';
import plugin, { P, TA, TB } from '../fixtures/test-plugin.js';
import { typeOf } from '../helpers/core.js';
import { makeMountDir, sh } from '../helpers/daemon.js';
import { one, readOnce, writeOnce } from '../helpers/sys.js';
import { uuid } from '../helpers/util.js';

t.test('mount() then core.unplug / plug / faults / setAvailable', async t => {
  const dir = await makeMountDir(t);
  const m = await mount(dir, { drivers: [plugin] });
  t.teardown(() => m.unmount());
  const p = (...parts: string[]) => [dir, ...parts].join('/');

  t.equal(await writeOnce(p(TA, 'create'), uuid(1)), 36);
  await m.core.unplug('mtest');
  await m.settled();
  t.same(await one(['lstat', p(P)]), { errno: 'ENOENT' }, 'the parent is gone from the files');
  t.same(await one(['lstat', p('bus/mdev/devices', uuid(1))]), { errno: 'ENOENT' });
  await m.core.plug('mtest');
  await m.settled();
  t.equal(await readOnce(p(TA, 'available_instances')), '3\n');

  m.core.faults.add({ op: 'create', errno: 'EPROTO', type: 'mtest-b' });
  t.equal(await writeOnce(p(TB, 'create'), uuid(2)), 'EPROTO');
  t.equal((await sh(`ls ${p(TB, 'devices')} | wc -l`)).stdout, '0\n');

  m.core.setAvailable(typeOf(m.core, 'mtest', 'mtest-a'), 0);
  t.equal(await readOnce(p(TB, 'available_instances')), '0\n', 'the counter is per parent');
  t.equal(await writeOnce(p(TB, 'create'), uuid(2)), 'EUSERS');
  t.same(m.core.controlState().parents.find(x => x.name === 'mtest')?.types[0], {
    id: 'mtest-a',
    name: 'Type A',
    available: 0,
    heldByTenant: 3,
    devices: [],
  });
});
