/**
 * The create and remove stores: bytes as one write(2) carries them, parsed
 * as mdev_sysfs.c create_store / remove_store do, then the core's typed call.
 */
import t from 'tap';
import { createStore, removeStore } from '../../src/sysfs/stores.js';
import { errnoOf, harness, register, uuid } from '../core/helpers.js';

t.test('create: a 37th byte is never inspected; the name is lowercase', async t => {
  const h = harness();
  const { type } = await register(h);
  const dev = await createStore(h.core, type, `${uuid(1).toUpperCase()}\n`);
  t.equal(dev.uuid, uuid(1), 'named lowercase');
  const dev2 = await createStore(h.core, type, Buffer.from(`${uuid(2)}x`));
  t.equal(dev2.uuid, uuid(2));
});

t.test('zero-length and malformed writes create nothing', async t => {
  const h = harness();
  const { type } = await register(h);
  t.equal(await errnoOf(createStore(h.core, type, '')), 'EINVAL');
  t.equal(await errnoOf(createStore(h.core, type, 'not-a-uuid')), 'EINVAL');
  t.equal(await errnoOf(createStore(h.core, type, `${uuid(1)}\n\n`)), 'EINVAL');
  t.equal([...h.core.devices()].length, 0);
  t.same(
    h.uevents.map(e => e.SUBSYSTEM),
    ['drivers', 'mtty'],
    "only the registrations: the vendor's driver, then the parent",
  );
});

t.test('removeStore: kstrtoul(buf, 0) decides', async t => {
  const h = harness();
  const { type } = await register(h, 'mtty', { maxInstances: 100 });
  let n = 0;
  for (const w of ['1', '1\n', '+1', '0x1', '010', '2', '42', Buffer.from('1')]) {
    const dev = await h.core.create(type, uuid(++n));
    await removeStore(h.core, dev, w);
    t.equal(dev.state, 'gone', JSON.stringify(String(w)));
  }
  const dev = await h.core.create(type, uuid(n + 1));
  for (const w of ['y', 'yes', 'true', '-1', ' 1', '1 ', '1\n\n', '\n', '18446744073709551616', '0x', '08']) {
    t.equal(await errnoOf(removeStore(h.core, dev, w)), 'EINVAL', JSON.stringify(w));
  }
  await removeStore(h.core, dev, '0');
  await removeStore(h.core, dev, '0\n');
  await removeStore(h.core, dev, '');
  t.equal(dev.state, 'active', '0 and empty writes do nothing');
  await h.core.remove(dev);
  t.equal(await errnoOf(removeStore(h.core, dev, '1')), 'ENODEV', 'stale device');
  t.equal(await errnoOf(h.core.remove(dev)), 'ENODEV');
});
