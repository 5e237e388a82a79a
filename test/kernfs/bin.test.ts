// Binary attribute nodes in memory (kernfs bin.ts; fs/sysfs/file.c
// sysfs_kf_bin_read/_write, fs/kernfs/file.c kernfs_file_read_iter).
import t from 'tap';
import { addBinAttr, KernfsRoot, openBin, O_RDONLY, O_RDWR, O_WRONLY, PAGE_SIZE } from '../../src/kernfs/index.js';
import type { MdevError } from '../../src/core/errno.js';

const errnoOf = (p: Promise<unknown>): Promise<string> =>
  p.then(
    () => 'resolved',
    (e: unknown) => (e as MdevError).errno,
  );
const thrown = (fn: () => unknown): string | undefined => {
  try {
    fn();
  } catch (e) {
    return (e as MdevError).errno;
  }
  return undefined;
};
/** A read that answers any range with (offset + k) & 0xff, recording what it was asked. */
const counting = (asked: Array<[number, number]>) => (off: number, len: number) => {
  asked.push([off, len]);
  return Uint8Array.from({ length: len }, (_, k) => (off + k) & 0xff);
};

t.test('reads: at most a page, cut at the size, nothing at or past it, no snapshot', async t => {
  const root = new KernfsRoot();
  const asked: Array<[number, number]> = [];
  const n = addBinAttr(root, 'blob', 0o444, 10_000, { read: counting(asked) });
  t.equal(n.kind, 'bin');
  t.equal(n.size, 10_000);
  const h = openBin(n, O_RDONLY);
  t.equal((await h.read(0, 65536)).length, PAGE_SIZE, 'one page per read');
  t.same([...(await h.read(9998, 10))], [9998 & 0xff, 9999 & 0xff], 'cut at the size');
  t.equal((await h.read(10_000, 10)).length, 0, 'at the end');
  t.equal((await h.read(20_000, 10)).length, 0, 'past the end');
  t.equal((await h.read(5, 0)).length, 0, 'zero length');
  t.same(asked, [
    [0, PAGE_SIZE],
    [9998, 2],
  ]);
  t.equal(await errnoOf(h.read(-1, 4)), 'EINVAL', 'a position that is not exact');
});

t.test('size 0: no limit, st_size 0 (the kernel reads no i_size)', async t => {
  const root = new KernfsRoot();
  const n = addBinAttr(root, 'nosize', 0o444, 0, { read: counting([]) });
  t.equal((await openBin(n, O_RDONLY).read(1 << 20, 8)).length, 8);
});

t.test('read failures: no read, a non-bytes result, a thrown errno, a removed node', async t => {
  const root = new KernfsRoot();
  t.equal(await errnoOf(openBin(addBinAttr(root, 'noread', 0o644, 4, {}), O_RDONLY).read(0, 4)), 'EIO');
  t.equal(await errnoOf(openBin(addBinAttr(root, 'junk', 0o444, 4, { read: () => 'text' as never }), O_RDONLY).read(0, 4)), 'EIO');
  const throws = addBinAttr(root, 'throws', 0o444, 4, {
    read: () => {
      throw { errno: 'ENXIO' };
    },
  });
  t.equal(await errnoOf(openBin(throws, O_RDONLY).read(0, 4)), 'ENXIO');
  const gone = addBinAttr(root, 'gone', 0o444, 4, { read: counting([]) });
  const h = openBin(gone, O_RDONLY);
  gone.remove();
  t.equal(await errnoOf(h.read(0, 4)), 'ENODEV');
  t.equal(
    thrown(() => addBinAttr(root, 'bad', 0o444, -1, {})),
    'EINVAL',
  );
});

t.test('writes: at an offset, cut at the size, EFBIG at or past it, a page at most', async t => {
  const root = new KernfsRoot();
  const seen: Array<[number, number]> = [];
  const n = addBinAttr(root, 'regs', 0o644, 6000, {
    write: (off, data) => {
      seen.push([off, data.length]);
    },
  });
  const h = openBin(n, O_RDWR);
  t.equal(await h.write(Buffer.alloc(3), 10), 3);
  t.equal(await h.write(Buffer.alloc(10), 5995), 5, 'cut at the size');
  t.equal(await errnoOf(h.write(Buffer.alloc(1), 6000)), 'EFBIG');
  t.equal(await h.write(Buffer.alloc(8192), 0), PAGE_SIZE, 'one page');
  t.equal(await h.write(Buffer.alloc(0), 0), 0, 'empty: nothing stored');
  t.same(seen, [
    [10, 3],
    [5995, 5],
    [0, PAGE_SIZE],
  ]);
  t.equal(await errnoOf(openBin(addBinAttr(root, 'ro', 0o644, 4, {}), O_WRONLY).write(Buffer.from('x'), 0)), 'EIO', 'no write');
});

t.test('open checks the mode like any attribute', async t => {
  const root = new KernfsRoot();
  const ro = addBinAttr(root, 'ro', 0o444, 4, { read: counting([]) });
  t.equal(
    thrown(() => openBin(ro, O_WRONLY)),
    'EACCES',
  );
  t.equal(
    thrown(() => openBin(addBinAttr(root, 'wo', 0o200, 4, {}), O_RDONLY)),
    'EACCES',
  );
  t.equal(
    thrown(() => addBinAttr(root, 'ro', 0o444, 4, {})),
    'EEXIST',
  );
});
