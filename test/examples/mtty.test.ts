import t from 'tap';
import mtty from '../../examples/mtty.js';
import { availability, parentOf, typeOf } from '../helpers/core.js';
import { uuid } from '../helpers/util.js';
import { coreWith, description, errnoOf, mdevAttr } from './helpers.js';

const CFG = 7 * 2 ** 40; // VFIO_PCI_CONFIG_REGION_INDEX << VFIO_PCI_OFFSET_SHIFT
const BAR0 = 0;
const BAR1 = 1 * 2 ** 40;
const GET_INFO = 0x3b6b,
  GET_REGION_INFO = 0x3b6c,
  GET_IRQ_INFO = 0x3b6d;

t.test('types, names and no description', async t => {
  const core = await coreWith(mtty);
  const p = parentOf(core, 'mtty');
  t.equal(p.device.path, 'devices/virtual/mtty/mtty');
  t.same(
    p.types.map(ty => [ty.id, ty.name, ty.deviceApi]),
    [
      ['mtty-1', 'Single port serial', 'vfio-pci'],
      ['mtty-2', 'Dual port serial', 'vfio-pci'],
    ],
  );
  t.equal(description(p.types[0]!), undefined);
  t.equal(description(p.types[1]!), undefined);
  t.same(core.drivers().includes('mtty'), true);
  await core.shutdown();
});

t.test('24-port pool: 24/12, shared by both types, then ENOSPC', async t => {
  const core = await coreWith(mtty);
  const one = typeOf(core, 'mtty', 'mtty-1');
  const two = typeOf(core, 'mtty', 'mtty-2');
  t.same(availability(core, 'mtty'), { 'mtty-1': 24, 'mtty-2': 12 });

  const first = await core.create(two, uuid(1));
  t.same(availability(core, 'mtty'), { 'mtty-1': 22, 'mtty-2': 11 });
  await core.create(one, uuid(2));
  t.same(availability(core, 'mtty'), { 'mtty-1': 21, 'mtty-2': 10 });

  for (let i = 3; i < 13; i++) await core.create(two, uuid(i)); // 20 more ports
  t.same(availability(core, 'mtty'), { 'mtty-1': 1, 'mtty-2': 0 });
  t.equal(await errnoOf(core.create(two, uuid(100))), 'ENOSPC');
  await core.create(one, uuid(13));
  t.same(availability(core, 'mtty'), { 'mtty-1': 0, 'mtty-2': 0 });
  t.equal(await errnoOf(core.create(one, uuid(101))), 'ENOSPC');

  await core.remove(first);
  t.same(availability(core, 'mtty'), { 'mtty-1': 2, 'mtty-2': 1 });
  await core.shutdown();
});

t.test('vendor attributes', async t => {
  const core = await coreWith(mtty);
  const dev = await core.create(typeOf(core, 'mtty', 'mtty-2'), uuid(7).toUpperCase());
  t.equal(await mdevAttr(dev, 'vendor', 'sample_mdev_dev').show!(dev), `This is MDEV ${uuid(7)}\n`);
  const p = parentOf(core, 'mtty');
  const legacyGroup = p.ops.devAttrGroups?.find(g => g.name === 'mtty_dev');
  t.equal(await legacyGroup?.attrs.find(a => a.name === 'sample_mtty_dev')?.show?.(p), 'This is phy device\n');
  await core.shutdown();
});

t.test('legacy profile: 4.10 mtty never refused a create', async t => {
  const core = await coreWith(mtty, 'legacy');
  const two = typeOf(core, 'mtty', 'mtty-2');
  for (let i = 0; i < 13; i++) await core.create(two, uuid(i + 1));
  t.same(availability(core, 'mtty'), { 'mtty-1': 0, 'mtty-2': 0 });
  await core.shutdown();
});

t.test('PCI config space in region 7', async t => {
  const core = await coreWith(mtty);
  await core.create(typeOf(core, 'mtty', 'mtty-1'), uuid(1));
  await core.create(typeOf(core, 'mtty', 'mtty-2'), uuid(2));
  const h1 = await core.vfio.open(uuid(1));
  const h2 = await core.vfio.open(uuid(2));

  const id = await h1.read(4, CFG);
  t.equal(id.readUInt16LE(0), 0x4348, 'vendor id');
  t.equal(id.readUInt16LE(2), 0x3253, 'device id');
  t.same([...(await h1.read(4, CFG + 0x8))], [0x10, 0x02, 0x00, 0x07], 'revision, prog-if, subclass, class');
  t.equal((await h1.read(2, CFG + 0x4)).readUInt16LE(0), 0x0001, 'command');
  t.equal((await h1.read(2, CFG + 0x6)).readUInt16LE(0), 0x0200, 'status');
  t.equal((await h1.read(4, CFG + 0x2c)).readUInt32LE(0), 0x32534348, 'subsystem ids');
  t.equal((await h1.read(1, CFG + 0x3d))[0], 0x01, 'INTA#');
  t.equal((await h1.read(15, CFG + 0x60)).toString('latin1'), 'PCI Serial/UART');
  t.same([...(await h1.read(0x40, CFG))], [...(await h1.read(0x40, CFG))], 'reads do not change config space');

  t.equal((await h1.read(4, CFG + 0x10)).readUInt32LE(0), 1, 'BAR0 is an I/O BAR');
  t.equal((await h1.read(4, CFG + 0x14)).readUInt32LE(0), 0, 'single port: no BAR1');
  t.equal((await h2.read(4, CFG + 0x14)).readUInt32LE(0), 1, 'dual port: BAR1');

  // BAR sizing: all ones in, size mask (8 bytes of I/O) plus the I/O bit out.
  t.equal(await h2.write(Buffer.from([0xff, 0xff, 0xff, 0xff]), CFG + 0x10), 4);
  t.equal((await h2.read(4, CFG + 0x10)).readUInt32LE(0), 0xfffffff9);
  await h2.write(Buffer.from([0x00, 0xc0, 0x00, 0x00]), CFG + 0x10);
  t.equal((await h2.read(4, CFG + 0x10)).readUInt32LE(0), 0xc001, 'BAR address programmed');
  await h1.write(Buffer.from([0xff, 0xff, 0xff, 0xff]), CFG + 0x14);
  t.equal((await h1.read(4, CFG + 0x14)).readUInt32LE(0), 0, 'single port BAR1 stays 0');
  await h1.write(Buffer.from([0x34, 0x12]), CFG + 0x0);
  t.equal((await h1.read(2, CFG)).readUInt16LE(0), 0x4348, 'vendor id is read-only');

  t.equal(await errnoOf(h1.read(4, 6 * 2 ** 40)), 'EFAULT', 'ROM region: no such region');
  await h1.close();
  await h2.close();
  await core.shutdown();
});

t.test('UART loopback through BAR0/BAR1', async t => {
  const core = await coreWith(mtty);
  await core.create(typeOf(core, 'mtty', 'mtty-2'), uuid(1));
  const h = await core.vfio.open(uuid(1));
  const lsr = async (bar: number) => (await h.read(1, bar + 5))[0];

  t.equal(await lsr(BAR0), 0x60, 'idle: THR empty, transmitter empty');
  for (const c of Buffer.from('hi!')) t.equal(await h.write(Buffer.from([c]), BAR0), 1);
  t.equal(await lsr(BAR0), 0x01, 'data ready');
  t.equal(await lsr(BAR1), 0x60, 'the second port is independent');
  let echoed = '';
  while ((await lsr(BAR0))! & 0x01) echoed += (await h.read(1, BAR0)).toString('latin1');
  t.equal(echoed, 'hi!', 'what was written to THR comes back from RBR');
  t.equal(await lsr(BAR0), 0x60);

  await h.write(Buffer.from('x'), BAR1);
  t.equal((await h.read(1, BAR1)).toString(), 'x');

  // IIR: no interrupt pending with IER clear; RX data available once RDI is enabled.
  t.equal((await h.read(1, BAR0 + 2))[0], 0xc1);
  await h.write(Buffer.from([0x01]), BAR0 + 1);
  await h.write(Buffer.from('y'), BAR0);
  t.equal((await h.read(1, BAR0 + 2))[0], 0xc4);
  t.equal((await h.read(1, BAR0 + 1))[0], 0x01, 'IER reads back');

  // DLAB: offsets 0/1 become the divisor latch.
  await h.write(Buffer.from([0x80]), BAR0 + 3);
  await h.write(Buffer.from([0x0c]), BAR0);
  t.equal((await h.read(1, BAR0))[0], 0x0c, 'divisor LSB');
  await h.write(Buffer.from([0x03]), BAR0 + 3);
  t.equal((await h.read(1, BAR0 + 3))[0], 0x03, 'LCR');
  t.equal((await h.read(1, BAR0)).toString(), 'y', 'FIFO untouched by the divisor access');

  // Overrun: the FIFO holds 16 bytes; the 17th sets OE.
  await h.write(Buffer.from([0x07]), BAR0 + 2); // FCR: enable + clear FIFOs
  for (let i = 0; i < 17; i++) await h.write(Buffer.from([0x41 + i]), BAR0);
  t.equal((await lsr(BAR0))! & 0x02, 0x02, 'overrun');
  t.equal((await h.read(1, BAR0 + 7))[0], 0, 'scratch');
  await h.write(Buffer.from([0x5a]), BAR0 + 7);
  t.equal((await h.read(1, BAR0 + 7))[0], 0x5a, 'scratch register');
  await h.close();
  await core.shutdown();
});

t.test('VFIO ioctls answer like the sample', async t => {
  const core = await coreWith(mtty);
  await core.create(typeOf(core, 'mtty', 'mtty-1'), uuid(1));
  const h = await core.vfio.open(uuid(1));
  const arg = (size: number, argsz = size, index?: number) => {
    const b = Buffer.alloc(size);
    b.writeUInt32LE(argsz, 0);
    if (index !== undefined) b.writeUInt32LE(index, 8);
    return b;
  };

  let irq = arg(16, 16, 0);
  t.equal(await errnoOf(h.ioctl(GET_IRQ_INFO, irq)), 'EINVAL', 'IRQ info before GET_INFO: num_irqs is still 0');

  const info = arg(16);
  t.equal(await h.ioctl(GET_INFO, info), 0);
  t.same([info.readUInt32LE(4), info.readUInt32LE(8), info.readUInt32LE(12)], [2, 9, 5], 'PCI, 9 regions, 5 irqs');
  t.equal(await errnoOf(h.ioctl(GET_INFO, arg(16, 8))), 'EINVAL', 'argsz too small');

  const cfg = arg(32, 32, 7);
  t.equal(await h.ioctl(GET_REGION_INFO, cfg), 0);
  t.equal(cfg.readUInt32LE(4), 3, 'read|write');
  t.equal(cfg.readBigUInt64LE(16), 0xffn, 'config space size');
  t.equal(cfg.readBigUInt64LE(24), 7n << 40n, 'config space offset');
  const bar0 = arg(32, 32, 0);
  await h.ioctl(GET_REGION_INFO, bar0);
  t.equal(bar0.readBigUInt64LE(16), 8n);
  const bar1 = arg(32, 32, 1);
  await h.ioctl(GET_REGION_INFO, bar1);
  t.equal(bar1.readBigUInt64LE(16), 0n, 'single port: BAR1 has no size');
  t.equal(bar1.readBigUInt64LE(24), 1n << 40n);
  t.equal(await errnoOf(h.ioctl(GET_REGION_INFO, arg(32, 32, 9))), 'EINVAL');

  irq = arg(16, 16, 0);
  t.equal(await h.ioctl(GET_IRQ_INFO, irq), 0);
  t.same([irq.readUInt32LE(4), irq.readUInt32LE(12)], [0x7, 1], 'INTx: eventfd|maskable|automasked, 1');
  irq = arg(16, 16, 1);
  await h.ioctl(GET_IRQ_INFO, irq);
  t.same([irq.readUInt32LE(4), irq.readUInt32LE(12)], [0x9, 1], 'MSI: eventfd|noresize, 1');
  t.equal(await errnoOf(h.ioctl(GET_IRQ_INFO, arg(16, 16, 2))), 'EINVAL', 'no MSI-X');
  t.equal(await errnoOf(h.ioctl(0x3b99, arg(16))), 'ENOTTY');
  await h.close();
  await core.shutdown();
});
