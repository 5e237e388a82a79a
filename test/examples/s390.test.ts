import t from 'tap';
import vfioAp, { kstrtoul } from '../../examples/vfio-ap.js';
import vfioCcw from '../../examples/vfio-ccw.js';
import { availability, parentOf, typeOf } from '../helpers/core.js';
import { uuid } from '../helpers/util.js';
import { coreWith, description, errnoOf, mdevAttr, parentAttr } from './helpers.js';
import type { MdevDevice } from '../../src/core/api.js';

const EADDRINUSE = 98;
const EADDRNOTAVAIL = 99;

t.test('kstrtoul(s, 0)', async t => {
  t.equal(kstrtoul('5'), 5n);
  t.equal(kstrtoul('5\n'), 5n);
  t.equal(kstrtoul('+7'), 7n);
  t.equal(kstrtoul('0xab'), 0xabn);
  t.equal(kstrtoul('0XAB\n'), 0xabn);
  t.equal(kstrtoul('010'), 8n, 'octal');
  t.equal(kstrtoul('0'), 0n);
  t.equal(kstrtoul('18446744073709551615'), (1n << 64n) - 1n);
  for (const bad of ['', '\n', 'x', '-1', ' 5', '5 ', '5\n\n', '08', '0x', '0xg', '1e3']) {
    t.equal(await errnoOf(() => kstrtoul(bad)), 'EINVAL', JSON.stringify(bad));
  }
  t.equal(await errnoOf(() => kstrtoul('18446744073709551616')), 'ERANGE');
});

t.test('vfio_ap: the matrix parent and its type', async t => {
  const core = await coreWith(vfioAp);
  const p = parentOf(core, 'matrix');
  t.equal(p.device.path, 'devices/vfio_ap/matrix');
  t.same(p.device.subsystem, { bus: 'matrix' });
  t.equal(p.device.driver, 'vfio_ap');
  const ty = typeOf(core, 'matrix', 'vfio_ap-passthrough');
  t.equal(ty.name, 'VFIO AP Passthrough Device');
  t.equal(ty.deviceApi, 'vfio-ap');
  t.equal(description(ty), undefined);
  t.same(availability(core, 'matrix'), { 'vfio_ap-passthrough': 65536 });
  await core.create(ty, uuid(1));
  t.same(availability(core, 'matrix'), { 'vfio_ap-passthrough': 65535 });
  t.ok(core.drivers().includes('vfio_ap_mdev'));
  await core.shutdown();
});

t.test('vfio_ap: assigning adapters, domains and control domains', async t => {
  const core = await coreWith(vfioAp);
  const ty = typeOf(core, 'matrix', 'vfio_ap-passthrough');
  const a = await core.create(ty, uuid(1));
  const b = await core.create(ty, uuid(2));
  const store = (dev: MdevDevice, name: string, value: string) => mdevAttr(dev, undefined, name).store!(dev, value, Buffer.from(value));
  const show = (dev: MdevDevice, name: string) => mdevAttr(dev, undefined, name).show!(dev);

  for (const name of [
    'assign_adapter',
    'unassign_adapter',
    'assign_domain',
    'unassign_domain',
    'assign_control_domain',
    'unassign_control_domain',
  ]) {
    const attr = mdevAttr(a, undefined, name);
    t.ok(attr.store && !attr.show, `${name} is write-only (0200)`);
  }
  for (const name of ['matrix', 'guest_matrix', 'control_domains']) {
    const attr = mdevAttr(a, undefined, name);
    t.ok(attr.show && !attr.store, `${name} is read-only (0444)`);
  }

  t.equal(await show(a, 'matrix'), '');
  await store(a, 'assign_adapter', '5\n');
  await store(a, 'assign_adapter', '0x06');
  t.equal(await show(a, 'matrix'), '05.\n06.\n', 'adapters only');
  await store(a, 'assign_domain', '0xab\n');
  await store(a, 'assign_domain', '4');
  t.equal(await show(a, 'matrix'), '05.0004\n05.00ab\n06.0004\n06.00ab\n', 'the cross product, "%02x.%04x"');

  await store(a, 'assign_control_domain', '0xab');
  await store(a, 'assign_control_domain', '4');
  t.equal(await show(a, 'control_domains'), '0004\n00ab\n');
  await store(a, 'unassign_control_domain', '0xab');
  t.equal(await show(a, 'control_domains'), '0004\n');

  // Parsing and range errors.
  t.equal(await errnoOf(() => store(a, 'assign_adapter', 'five')), 'EINVAL');
  t.equal(await errnoOf(() => store(a, 'assign_adapter', '-1')), 'EINVAL');
  t.equal(await errnoOf(() => store(a, 'assign_adapter', '99999999999999999999999')), 'ERANGE');
  t.equal(await errnoOf(() => store(a, 'assign_adapter', '256')), 'ENODEV', 'APID > 255');
  t.equal(await errnoOf(() => store(a, 'assign_domain', '0x100')), 'ENODEV', 'APQI > 255');
  t.equal(await errnoOf(() => store(a, 'assign_control_domain', '256')), 'ENODEV');
  t.equal(await errnoOf(() => store(a, 'unassign_adapter', '256')), 'ENODEV');
  t.equal(await errnoOf(() => store(a, 'unassign_domain', 'x')), 'EINVAL');
  t.equal(await show(a, 'matrix'), '05.0004\n05.00ab\n06.0004\n06.00ab\n', 'failed writes change nothing');

  // Sharing: b may not take a queue a holds.
  await store(b, 'assign_adapter', '5');
  t.equal(await errnoOf(() => store(b, 'assign_domain', '4')), EADDRINUSE, 'queue 05.0004 belongs to a');
  t.equal(await show(b, 'matrix'), '05.\n');

  // Ownership: a queue whose adapter and domain are both still the default drivers' is refused.
  await store(b, 'unassign_adapter', '5');
  await store(b, 'assign_adapter', '3'); // no domains yet: no queues to check
  t.equal(await errnoOf(() => store(b, 'assign_domain', '0x10')), EADDRNOTAVAIL, 'queue 03.0010 belongs to zcrypt');
  t.equal(await show(b, 'matrix'), '03.\n');
  await store(b, 'assign_domain', '0xab'); // domain 0xab was handed to vfio_ap
  t.equal(await show(b, 'matrix'), '03.00ab\n');
  t.equal(await errnoOf(() => store(b, 'assign_adapter', '5')), EADDRINUSE, 'queue 05.00ab belongs to a');

  // Unassigning frees the queues for the other device.
  await store(a, 'unassign_domain', '0xab');
  t.equal(await show(a, 'matrix'), '05.0004\n06.0004\n');
  await store(b, 'assign_adapter', '5');
  t.equal(await show(b, 'matrix'), '03.00ab\n05.00ab\n');
  t.equal(await show(b, 'guest_matrix'), '03.00ab\n05.00ab\n', 'every assigned queue is bound to vfio_ap: the guest gets them all');
  await core.shutdown();
});

t.test('vfio_ap: ap_config shows and replaces the three masks at once', async t => {
  const core = await coreWith(vfioAp);
  const ty = typeOf(core, 'matrix', 'vfio_ap-passthrough');
  const a = await core.create(ty, uuid(1));
  const b = await core.create(ty, uuid(2));
  const store = (dev: MdevDevice, value: string) => mdevAttr(dev, undefined, 'ap_config').store!(dev, value, Buffer.from(value));
  const show = (dev: MdevDevice, name = 'ap_config') => mdevAttr(dev, undefined, name).show!(dev);
  const zero = '0x' + '0'.repeat(64);
  /** A mask as the kernel prints it: id 0 is the leftmost bit (set_bit_inv). */
  const mask = (...ids: number[]): string => {
    let bits = 0n;
    for (const id of ids) bits |= 1n << BigInt(255 - id);
    return '0x' + bits.toString(16).padStart(64, '0');
  };
  t.equal(mdevAttr(a, undefined, 'ap_config').mode, 0o644);
  t.equal(await show(a), `${zero},${zero},${zero}\n`, 'empty: three zero masks (write_ap_bitmap)');
  t.equal(mask(5), '0x04' + '0'.repeat(62), 'adapter 5 is bit 5 from the left');

  await store(a, `${mask(5, 6)},${mask(4, 0xab)},${mask(4)}\n`);
  t.equal(await show(a, 'matrix'), '05.0004\n05.00ab\n06.0004\n06.00ab\n');
  t.equal(await show(a, 'control_domains'), '0004\n');
  t.equal(await show(a), `${mask(5, 6)},${mask(4, 0xab)},${mask(4)}\n`, 'shows what was written');
  await store(a, `0x04,x,${mask(4)}`); // short masks, "x" alone, no newline: ap_hex2bitmap takes them
  t.equal(await show(a, 'matrix'), '05.\n');

  // Every failure leaves the matrix as it was.
  const before = await show(a);
  for (const [value, errno] of [
    ['0x04,0x08', 'EINVAL'], // two masks
    ['0x0g,0,0', 'EINVAL'],
    [`0x${'f'.repeat(65)},0,0`, 'EINVAL'], // more than 256 bits
    ['0x04 ,0,0', 'EINVAL'],
    [`${mask(3)},${mask(0x10)},0`, EADDRNOTAVAIL], // queue 03.0010 is zcrypt's
  ] as const) {
    t.equal(await errnoOf(() => store(a, value)), errno, JSON.stringify(value));
    t.equal(await show(a), before, `unchanged after ${JSON.stringify(value)}`);
  }
  // strsep(",\n") finds an empty third mask after a newline: two masks and a newline are taken.
  await store(b, `${mask(6)},${mask(4)}\n`);
  t.equal(await show(b, 'matrix'), '06.0004\n');
  await store(b, `${mask(5)},${mask(4)},0`);
  t.equal(await errnoOf(() => store(a, `${mask(5)},${mask(4)},0`)), EADDRINUSE, "queue 05.0004 is b's");
  t.equal(await show(a), before);
  await core.shutdown();
});

t.test('vfio_ap legacy profile: own counter', async t => {
  const core = await coreWith(vfioAp, 'legacy');
  const dev = await core.create(typeOf(core, 'matrix', 'vfio_ap-passthrough'), uuid(1));
  t.same(availability(core, 'matrix'), { 'vfio_ap-passthrough': 65535 });
  t.throws(() => mdevAttr(dev, undefined, 'guest_matrix'), 'no guest_matrix in 4.10');
  t.throws(() => mdevAttr(dev, undefined, 'ap_config'), 'no ap_config in 4.10');
  await core.shutdown();
});

t.test('vfio_ccw: one instance per subchannel', async t => {
  const core = await coreWith(vfioCcw);
  const p = parentOf(core, '0.0.0313');
  t.equal(p.device.path, 'devices/css0/0.0.0313');
  t.same(p.device.subsystem, { bus: 'css' });
  t.equal(p.device.driver, 'vfio_ccw');
  const ty = typeOf(core, '0.0.0313', 'vfio_ccw-io');
  t.equal(ty.name, 'I/O subchannel (Non-QDIO)');
  t.equal(ty.deviceApi, 'vfio-ccw');
  t.equal(description(ty), undefined);
  t.equal(core.availableInstances(ty), 1);
  const dev = await core.create(ty, uuid(1));
  t.equal(core.availableInstances(ty), 0);
  t.equal(await errnoOf(core.create(ty, uuid(2))), 'EUSERS');
  await core.remove(dev);
  t.equal(core.availableInstances(ty), 1);
  t.ok(core.drivers().includes('vfio_ccw_mdev'));

  t.equal(await parentAttr(p, 'type').show!(p), '0\n');
  t.equal(await parentAttr(p, 'modalias').show!(p), 'css:t0\n');
  t.equal(await parentAttr(p, 'uevent').show!(p), 'DRIVER=vfio_ccw\nST=0\nMODALIAS=css:t0\n');
  t.equal(await parentAttr(p, 'chpids').show!(p), '40 41 00 00 00 00 00 00 \n');
  t.equal(await parentAttr(p, 'pimpampom').show!(p), 'c0 c0 ff\n');
  t.equal(await parentAttr(p, 'dev_busid').show!(p), '0.0.5000\n');
  await core.shutdown();
});

t.test('vfio_ccw legacy profile: EPERM for the second device', async t => {
  const core = await coreWith(vfioCcw, 'legacy');
  const ty = typeOf(core, '0.0.0313', 'vfio_ccw-io');
  await core.create(ty, uuid(1));
  t.equal(core.availableInstances(ty), 0);
  t.equal(await errnoOf(core.create(ty, uuid(2))), 'EPERM');
  await core.shutdown();
});
