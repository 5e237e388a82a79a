// The udev message in memory: udevd's header layout, MurmurHash2, the
// properties as udevd would broadcast them, and USEC_INITIALIZED as a
// rule-less udevd stamps it. The same bytes are checked against systemd's libudev (udevadm
// monitor, with its BPF subsystem filter) in test/run/udev.test.ts.
import t from 'tap';
import path from 'node:path';
import type { Uevent } from '../../src/core/api.js';
import { murmurHash2, stringHash32 } from '../../src/udev/murmur.js';
import { HEADER_SIZE, UDEV_MONITOR_MAGIC, decodeUdevMessage, encodeUdevMessage } from '../../src/udev/wire.js';
import { UdevBroadcaster, udevProperties } from '../../src/udev/broadcast.js';

t.test('MurmurHash2 (seed 0), the reference implementation on every tail length', async t => {
  // Values of Austin Appleby's MurmurHash2 (little-endian reads), as systemd's MurmurHash2.c computes them.
  t.equal(murmurHash2(Buffer.alloc(0)), 0);
  t.equal(stringHash32('a'), 0x92685f5e);
  t.equal(stringHash32('ab'), 0x1aa14063);
  t.equal(stringHash32('abc'), 0x13577c9b);
  t.equal(stringHash32('abcd'), 0x26873021);
  t.equal(murmurHash2(Buffer.from('abcd'), 1), murmurHash2(Buffer.from('abcd'), 1), 'deterministic');
  t.not(murmurHash2(Buffer.from('abcd'), 1), stringHash32('abcd'), 'the seed counts');
});

const add: Uevent = {
  ACTION: 'add',
  DEVPATH: '/devices/virtual/vfio/0',
  SUBSYSTEM: 'vfio',
  MAJOR: '511',
  MINOR: '0',
  DEVNAME: 'vfio/0',
  SEQNUM: 5,
};

t.test("header: udevd's struct monitor_netlink_header", async t => {
  const props = udevProperties(add, 123n);
  const msg = encodeUdevMessage(props);
  t.equal(msg.toString('latin1', 0, 8), 'libudev\0');
  t.equal(msg.readUInt32BE(8), UDEV_MONITOR_MAGIC, 'magic, network order');
  t.equal(msg.readUInt32LE(12), HEADER_SIZE, 'header_size, host order');
  t.equal(msg.readUInt32LE(16), 40, 'properties_off');
  t.equal(msg.readUInt32LE(20), msg.length - 40, 'properties_len');
  t.equal(msg.readUInt32BE(24), stringHash32('vfio'), 'subsystem hash, network order');
  t.equal(msg.readUInt32BE(28), 0, 'no DEVTYPE: 0');
  t.equal(msg.readUInt32BE(32), 0, 'no tags');
  t.equal(msg.readUInt32BE(36), 0);
  t.equal(msg[msg.length - 1], 0, 'the last property is NUL-terminated');
  t.same(decodeUdevMessage(msg), props);
  const typed = encodeUdevMessage([...props, ['DEVTYPE', 'usb_device']]);
  t.equal(typed.readUInt32BE(28), stringHash32('usb_device'), 'DEVTYPE hashed when present');
  t.throws(() => encodeUdevMessage([['ACTION', 'add']]), /SUBSYSTEM/);
});

t.test('properties: the kernel order, DEVNAME under /dev, USEC_INITIALIZED last', async t => {
  t.same(udevProperties(add, 42n), [
    ['ACTION', 'add'],
    ['DEVPATH', '/devices/virtual/vfio/0'],
    ['SUBSYSTEM', 'vfio'],
    ['MAJOR', '511'],
    ['MINOR', '0'],
    ['DEVNAME', '/dev/vfio/0'],
    ['SEQNUM', '5'],
    ['USEC_INITIALIZED', '42'],
  ]);
});

// systemd sd-device/device-private.c: device_ensure_usec_initialized() keeps
// the time of the database's `I:` line, which device_update_db() writes only
// for a device with information from rules; a rule-less udevd has none, so
// each event is stamped anew and a remove (event_execute_rules_on_remove())
// carries no time at all.
t.test('USEC_INITIALIZED: a new time on every event of a rule-less udevd, none on remove', async t => {
  const sent: Buffer[] = [];
  const b = new UdevBroadcaster({ send: m => sent.push(m), close: () => {} });
  const seen: string[] = [];
  b.onSent((action, props) => seen.push(`${action} ${props.find(([k]) => k === 'DEVPATH')![1]}`));
  const dev = '/devices/virtual/mtty/mtty/x';
  const ev = (ACTION: Uevent['ACTION'], SEQNUM: number): Uevent => ({ ACTION, DEVPATH: dev, SUBSYSTEM: 'mdev', SEQNUM });
  const usec = (m: Buffer) => decodeUdevMessage(m).find(([k]) => k === 'USEC_INITIALIZED')?.[1];
  b.handle(ev('add', 1));
  await new Promise(r => setTimeout(r, 5));
  b.handle(ev('bind', 2));
  b.handle(ev('remove', 3));
  t.equal(b.sent, 3);
  t.ok(BigInt(usec(sent[1]!)!) > BigInt(usec(sent[0]!)!), 'bind is stamped when it is handled, not with the add time');
  t.equal(usec(sent[2]!), undefined, 'remove has none');
  t.same(
    decodeUdevMessage(sent[2]!).map(([k]) => k),
    ['ACTION', 'DEVPATH', 'SUBSYSTEM', 'SEQNUM'],
  );
  t.same(seen, [`add ${dev}`, `bind ${dev}`, `remove ${dev}`]);
  t.same(
    sent.map(m => decodeUdevMessage(m).find(([k]) => k === 'SEQNUM')![1]),
    ['1', '2', '3'],
    'in order',
  );
});

t.test("udev database: a rule-less udevd's entries", async t => {
  const { mkdtemp, readdir, stat, rm } = await import('node:fs/promises');
  const os = await import('node:os');
  const { UdevDatabase, udevDeviceId } = await import('../../src/udev/database.js');
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mdevfs-udevdb-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const logs: string[] = [];
  const db = new UdevDatabase(dir, m => logs.push(m));
  const mdev: Uevent = { ACTION: 'add', DEVPATH: '/devices/virtual/mtty/mtty/x', SUBSYSTEM: 'mdev', SEQNUM: 1 };
  t.equal(udevDeviceId(mdev), undefined, 'no device number: no entry');
  t.equal(udevDeviceId(add), 'c511:0');
  db.handle(mdev);
  db.handle(add);
  t.same(await readdir(dir), ['c511:0']);
  const st = await stat(path.join(dir, 'c511:0'));
  t.equal(st.size, 0, 'empty: no rule gave it information');
  t.equal(st.mode & 0o7777, 0o644);
  db.handle({ ...add, ACTION: 'remove', SEQNUM: 6 });
  t.same(await readdir(dir), [], 'gone with the device');
  t.same(logs, []);
});
