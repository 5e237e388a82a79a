// Binary attributes (kernfs bin.ts, the kernel's bin_attribute) through a real
// FUSE mount of the hand-made tree: st_size is the attribute's size, reads
// at any offset with no snapshot and no PAGE_SIZE - 1 cut, cut at the end,
// nothing past it; writes at an offset, cut at the end, EFBIG past it.
import t from 'tap';
import { startDaemon, serveTree, sh } from '../helpers/daemon.js';
import { sys, one } from '../helpers/sys.js';

/** What the fixture's bin_blob holds: byte i is i % 251. */
const blob = (from: number, to: number): string =>
  Buffer.from(Array.from({ length: to - from }, (_, k) => (from + k) % 251)).toString('latin1');

t.test('binary attributes over FUSE', async t => {
  const d = await startDaemon(t, { command: serveTree() });

  t.test('st_size is the size; text attributes keep 4096', async t => {
    t.match(await one(['lstat', d.p('bin_blob')]), { mode: 0o100444, size: 6000 });
    t.match(await one(['lstat', d.p('bin_rw')]), { mode: 0o100644, size: 16 });
    t.match(await one(['lstat', d.p('attr_ro')]), { size: 4096 });
    t.equal((await sh(`stat -c %s ${d.p('bin_blob')}`)).stdout, '6000\n');
  });

  t.test('reads at any offset, cut at the end, nothing past it', async t => {
    const r = await sys([
      ['open', d.p('bin_blob'), 'O_RDONLY'],
      ['pread', 0, 16, 0],
      ['pread', 0, 16, 0x34],
      ['pread', 0, 100, 5950],
      ['pread', 0, 100, 6000],
      ['pread', 0, 100, 7000],
      ['pread', 0, 4096, 4000],
      ['close', 0],
    ]);
    t.equal(r[1]!.ok, blob(0, 16), 'offset 0');
    t.equal(r[2]!.ok, blob(0x34, 0x44), 'offset 0x34, without a read at 0 first');
    t.equal(r[3]!.ok, blob(5950, 6000), 'a read spanning the end is cut to the size');
    t.equal(r[4]!.ok, '', 'a read at the end returns 0 bytes');
    t.equal(r[5]!.ok, '', 'a read past the end returns 0 bytes');
    t.equal(r[6]!.ok, blob(4000, 6000), 'no PAGE_SIZE - 1 cut');
  });

  t.test('cat and od see the whole content', async t => {
    const r = await sh(`cat ${d.p('bin_blob')} | wc -c; od -A d -t x1 -j 250 -N 3 ${d.p('bin_blob')}`);
    t.equal(r.stdout, '6000\n0000250 fa 00 01\n0000253\n');
  });

  t.test('text attributes are still cut at 4095', async t => {
    t.equal((await sh(`cat ${d.p('big')} | wc -c`)).stdout, '4095\n');
  });

  t.test('writes at an offset, cut at the end, EFBIG past it', async t => {
    const r = await sys([
      ['open', d.p('bin_rw'), 'O_RDWR'],
      ['pwrite', 0, Buffer.from([1, 2, 3, 4]), 4],
      ['pwrite', 0, Buffer.from([9, 9, 9, 9]), 14],
      ['pwrite', 0, Buffer.from([7]), 16],
      ['pread', 0, 64, 0],
      ['close', 0],
    ]);
    t.equal(r[1]!.ok, 4);
    t.equal(r[2]!.ok, 2, 'cut to the size');
    t.equal(r[3]!.errno, 'EFBIG', 'at the end');
    t.same([...Buffer.from(r[4]!.ok as string, 'latin1')], [0, 0, 0, 0, 1, 2, 3, 4, 0, 0, 0, 0, 0, 0, 9, 9]);
  });

  t.test('a read-only binary attribute refuses opening for writing', async t => {
    t.same(await one(['open', d.p('bin_blob'), 'O_WRONLY']), { errno: 'EACCES' });
  });
});
