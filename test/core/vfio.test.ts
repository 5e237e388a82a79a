import t from 'tap';
import { MdevError } from '../../src/core/errno.js';
import { deferred, deviceTimeline, errnoOf, harness, register, tick, uuid, clear } from './helpers.js';

t.test('open/close call the plugin on first open and last close; openCount tracked', async t => {
  const h = harness();
  const calls: string[] = [];
  const { type } = await register(h, 'mtty', {
    open: d => {
      calls.push(`open ${d.uuid}`);
    },
    close: d => {
      calls.push(`close ${d.uuid}`);
    },
  });
  const dev = await h.core.create(type, uuid(1));
  clear(h);
  const a = await h.core.vfio.open(uuid(1).toUpperCase());
  t.equal(a.device, dev);
  const b = await h.core.vfio.open(uuid(1));
  t.equal(dev.openCount, 2);
  t.same(calls, [`open ${uuid(1)}`]);
  await a.close();
  t.same(calls, [`open ${uuid(1)}`]);
  await b.close();
  await b.close();
  t.same(calls, [`open ${uuid(1)}`, `close ${uuid(1)}`]);
  t.equal(dev.openCount, 0);
  t.same(deviceTimeline(h, dev), [
    'opened: active +remove +type drv=mtty grp=0 vfiogrp=0 vfio0 open=1',
    'opened: active +remove +type drv=mtty grp=0 vfiogrp=0 vfio0 open=2',
    'closed: active +remove +type drv=mtty grp=0 vfiogrp=0 vfio0 open=1',
    'closed: active +remove +type drv=mtty grp=0 vfiogrp=0 vfio0',
  ]);
  t.equal(await errnoOf(a.read(4, 0)), 'EBADF', 'closed handle');
});

t.test('open: ENODEV unless active and bound; a refusing plugin', async t => {
  const h = harness('modern', { callTimeoutMs: 30 });
  const gate = deferred();
  let refuse: unknown = new MdevError('EPERM');
  let closes = 0;
  const { type } = await register(h, 'mtty', {
    create: async d => {
      if (d.uuid === uuid(2)) await gate.promise;
    },
    open: () => {
      if (refuse) throw refuse;
    },
    close: () => {
      closes++;
    },
  });
  t.equal(await errnoOf(h.core.vfio.open(uuid(1))), 'ENODEV', 'no such device');
  t.equal(await errnoOf(h.core.vfio.open(42 as unknown as string)), 'ENODEV');
  const dev = await h.core.create(type, uuid(1));
  const creating = h.core.create(type, uuid(2));
  await tick();
  t.equal(await errnoOf(h.core.vfio.open(uuid(2))), 'ENODEV', 'still adding');
  gate.resolve();
  await creating;
  t.equal(await errnoOf(h.core.vfio.open(uuid(1))), 'EPERM');
  t.equal(dev.openCount, 0);
  refuse = new Error('x');
  t.equal(await errnoOf(h.core.vfio.open(uuid(1))), 'EIO');
  await h.core.remove(dev);
  t.equal(dev.state, 'gone', 'a refused open does not hold up a remove');
  t.equal(closes, 0);
});

t.test('a hanging open times out; if it then succeeds the plugin gets its close', async t => {
  const h = harness('modern', { callTimeoutMs: 20 });
  const late = deferred();
  let closes = 0;
  const { type } = await register(h, 'mtty', {
    open: () => late.promise,
    close: () => {
      closes++;
    },
  });
  const dev = await h.core.create(type, uuid(1));
  t.equal(await errnoOf(h.core.vfio.open(uuid(1))), 'ETIMEDOUT');
  t.equal(dev.openCount, 0);
  late.resolve();
  await tick(5);
  t.equal(closes, 1);
});

t.test('read/write/ioctl/mmap are forwarded and their results checked', async t => {
  const h = harness();
  const regs = Buffer.alloc(16);
  let bad = false;
  const { type } = await register(h, 'mtty', {
    read: (_d, count, offset) => (bad ? ('nope' as unknown as Buffer) : regs.subarray(offset, offset + count)),
    write: (_d, data, offset) => (bad ? data.length + 1 : data.copy(regs, offset)),
    ioctl: (_d, cmd, arg) => {
      if (cmd === 1) {
        arg.writeUInt32LE(0xabcd, 0);
        return 0;
      }
      return bad ? 0.5 : -22;
    },
    mmap: (_d, req) => (bad ? (null as unknown as Buffer) : Buffer.alloc(req.length)),
  });
  await h.core.create(type, uuid(1));
  const fd = await h.core.vfio.open(uuid(1));
  t.equal(await fd.write(Buffer.from([1, 2, 3]), 4), 3);
  t.same([...(await fd.read(4, 3))], [0, 1, 2, 3]);
  const arg = Buffer.alloc(4);
  t.equal(await fd.ioctl(1, arg), 0);
  t.equal(arg.readUInt32LE(0), 0xabcd, 'the plugin fills the argument');
  t.equal(await errnoOf(fd.ioctl(2, arg)), 'EINVAL', 'a -errno return');
  t.equal((await fd.mmap({ offset: 0, length: 4096, prot: 3 })).length, 4096);
  t.equal(await errnoOf(fd.read(-1, 0)), 'EINVAL');
  t.equal(await errnoOf(fd.mmap({ offset: 0, length: 0, prot: 3 })), 'EINVAL');
  bad = true;
  t.equal(await errnoOf(fd.read(4, 0)), 'EIO');
  t.equal(await errnoOf(fd.write(Buffer.from([1]), 0)), 'EIO');
  t.equal(await errnoOf(fd.ioctl(2, arg)), 'EIO');
  t.equal(await errnoOf(fd.mmap({ offset: 0, length: 1, prot: 1 })), 'EIO');
  await fd.close();
});

t.test('a read returning more than asked is EIO', async t => {
  const h = harness();
  const { type } = await register(h, 'mtty', { read: () => Buffer.alloc(8) });
  await h.core.create(type, uuid(1));
  const fd = await h.core.vfio.open(uuid(1));
  t.equal(await errnoOf(fd.read(4, 0)), 'EIO');
  t.equal((await fd.read(8, 0)).length, 8);
  await fd.close();
});

t.test('missing VFIO ops are EINVAL, as vfio_mdev.c returned', async t => {
  const h = harness();
  const { type } = await register(h);
  await h.core.create(type, uuid(1));
  const fd = await h.core.vfio.open(uuid(1));
  t.equal(await errnoOf(fd.read(4, 0)), 'EINVAL');
  t.equal(await errnoOf(fd.write(Buffer.alloc(1), 0)), 'EINVAL');
  t.equal(await errnoOf(fd.ioctl(0x3b6a, Buffer.alloc(0))), 'EINVAL');
  t.equal(await errnoOf(fd.mmap({ offset: 0, length: 4096, prot: 1 })), 'EINVAL');
  await fd.close();
});

t.test('containers: foreign ones are EINVAL, a second container is EBUSY', async t => {
  const h = harness();
  const other = harness();
  const { type } = await register(h);
  await h.core.create(type, uuid(1));
  t.equal(await errnoOf(h.core.vfio.open(uuid(1), { container: other.core.vfio.createContainer() })), 'EINVAL');
  t.equal(await errnoOf(h.core.vfio.open(uuid(1), { container: {} as never })), 'EINVAL');
  const c1 = h.core.vfio.createContainer();
  const c2 = h.core.vfio.createContainer();
  const fd = await h.core.vfio.open(uuid(1), { container: c1 });
  t.equal(await errnoOf(h.core.vfio.open(uuid(1), { container: c2 })), 'EBUSY');
  const fd2 = await h.core.vfio.open(uuid(1), { container: c1 });
  const fd3 = await h.core.vfio.open(uuid(1));
  await Promise.all([fd.close(), fd2.close(), fd3.close()]);
  const fd4 = await h.core.vfio.open(uuid(1), { container: c2 });
  await fd4.close();
  t.throws(() => h.core.vfio.createContainer({ lockedLimitPages: -1 }));
});

t.test('a throwing close is logged; the device still closes', async t => {
  const h = harness();
  const { type } = await register(h, 'mtty', {
    close: () => {
      throw new Error('boom');
    },
  });
  const dev = await h.core.create(type, uuid(1));
  const fd = await h.core.vfio.open(uuid(1));
  await fd.close();
  t.equal(dev.openCount, 0);
  t.match(h.logs.join('\n'), /boom \(ignored/);
});
