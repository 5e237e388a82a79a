/** The control protocol's requests on an in-memory core (src/daemon/control-protocol.ts); the socket is tested through mounts (test/cli/ctl.test.ts). */
import t from 'tap';
import { handleLine } from '../../src/daemon/control-protocol.js';
import { harness, register, uuid } from '../core/helpers.js';

const req = (h: ReturnType<typeof harness>, r: unknown) => handleLine(h.core, typeof r === 'string' ? r : JSON.stringify(r));

t.test('malformed requests are EINVAL and change nothing', async t => {
  const h = harness();
  await register(h);
  for (const bad of [
    'not json',
    '[1]',
    'null',
    { op: 'frob' },
    { op: 'unplug' },
    { op: 'unplug', parent: 3 },
    { op: 'fail', call: 'create' },
    { op: 'fail', call: 'mmap', errno: 'EIO' },
    { op: 'fail', call: 'create', errno: 'EIO', count: 1.5 },
    { op: 'delay', call: 'create' },
    { op: 'delay', call: 'create', ms: '10' },
    { op: 'set-available', type: 'mtty-1' },
    { op: 'set-available', type: 'mtty-1', available: -1 },
    { op: 'clear-faults', id: 'x' },
  ]) {
    t.match(await req(h, bad), { ok: false, errno: 'EINVAL' }, JSON.stringify(bad));
  }
  t.same(h.core.faults.list(), []);
  t.equal(h.core.parent('mtty')?.state, 'live');
});

t.test('a type on two parents needs its parent', async t => {
  const h = harness();
  await register(h, 'mtty');
  // A second parent with the same type prefix: the same type ids.
  await h.core.host.registerDevice(
    { path: 'devices/virtual/mtty/mtty2', typePrefix: 'mtty', subsystem: { class: 'mtty' } },
    { driver: 'mtty', deviceApi: 'vfio-pci', types: [{ id: '1' }], maxInstances: 4, create() {}, remove() {} },
  );
  t.match(await req(h, { op: 'set-available', type: 'mtty-1', available: 1 }), { ok: false, errno: 'EINVAL', message: /mtty, mtty2/ });
  t.same(await req(h, { op: 'set-available', type: 'mtty-1', available: 1, parent: 'mtty2' }), { ok: true, available: 1 });
  t.equal(h.core.availableInstances(h.core.parent('mtty')!.types[0]!), 4, 'the other parent is untouched');
  t.match(await req(h, { op: 'set-available', type: 'mtty-9', available: 1 }), { ok: false, errno: 'ENODEV' });
});

t.test('fail, delay, clear-faults and state', async t => {
  const h = harness();
  const { type } = await register(h);
  t.match(await req(h, { op: 'fail', call: 'create', errno: 'ENOSPC', uuid: uuid(1), count: 2 }), {
    ok: true,
    fault: { id: 1, op: 'create', uuid: uuid(1), errno: 'ENOSPC', remaining: 2 },
  });
  t.match(await req(h, { op: 'delay', call: 'remove', ms: 10 }), { ok: true, fault: { id: 2, op: 'remove', delayMs: 10, remaining: 1 } });
  t.match(await req(h, { op: 'state' }), { ok: true, state: { faults: [{ id: 1 }, { id: 2 }] } });
  t.same(await req(h, { op: 'clear-faults', id: 1 }), { ok: true });
  t.match(await req(h, { op: 'clear-faults', id: 1 }), { ok: false, errno: 'ENOENT' });
  t.same(await req(h, { op: 'clear-faults' }), { ok: true });
  t.same(h.core.faults.list(), []);
  await h.core.create(type, uuid(1));
  t.same(await req(h, { op: 'unplug', parent: 'mtty' }), { ok: true });
  t.match(await req(h, { op: 'state' }), { state: { parents: [{ name: 'mtty', state: 'unplugged' }], devices: [] } });
  t.same(await req(h, { op: 'plug', parent: 'mtty' }), { ok: true });
  t.match(await req(h, { op: 'ping' }), { ok: true, version: 1, profile: 'modern' });
});
