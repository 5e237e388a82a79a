import t from 'tap';
import { IommuGroupAllocator } from '../../src/core/iommu-groups.js';
import { MinHeap } from '../../src/core/min-heap.js';
import { errnoOf } from './helpers.js';

t.test('lowest free id first', async t => {
  const a = new IommuGroupAllocator();
  t.same([a.allocate(), a.allocate(), a.allocate(), a.allocate()], [0, 1, 2, 3]);
  a.free(2);
  a.free(0);
  t.equal(a.allocate(), 0);
  t.equal(a.allocate(), 2);
  t.equal(a.allocate(), 4);
  a.free(4);
  t.equal(a.allocate(), 4, 'the top id comes back too');
  a.free(99);
  t.equal(a.allocatedCount, 5, 'freeing an unknown id is a no-op');
});

t.test('reserved ids are skipped, and reusable once unreserved', async t => {
  const a = new IommuGroupAllocator();
  a.reserve(1);
  a.reserve(3);
  t.same([a.allocate(), a.allocate(), a.allocate()], [0, 2, 4]);
  a.free(0);
  a.reserve(0); // a freed id reserved since is dropped lazily
  t.equal(a.allocate(), 5);
  a.unreserve(1);
  t.equal(a.allocate(), 1);
  a.unreserve(0);
  t.equal(a.allocate(), 0);
  a.reserve(10);
  a.reserve(10);
  a.unreserve(10);
  t.ok(a.isReserved(10), 'reservations are counted');
  a.unreserve(10);
  t.notOk(a.isReserved(10));
});

t.test('reserving an id a device holds is EBUSY', async t => {
  const a = new IommuGroupAllocator();
  a.allocate();
  t.equal(await errnoOf(() => a.reserve(0)), 'EBUSY');
});

t.test('random alloc/free matches a naive lowest-free model', async t => {
  const a = new IommuGroupAllocator();
  const used = new Set<number>();
  const reserved = new Set([3, 7]);
  reserved.forEach(r => a.reserve(r));
  let seed = 7;
  const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x80000000;
  for (let i = 0; i < 3000; i++) {
    if (used.size === 0 || rnd() < 0.55) {
      let want = 0;
      while (used.has(want) || reserved.has(want)) want++;
      const got = a.allocate();
      if (got !== want) {
        t.fail(`step ${i}: got ${got}, want ${want}`);
        return;
      }
      used.add(got);
    } else {
      const arr = [...used];
      const id = arr[Math.floor(rnd() * arr.length)]!;
      used.delete(id);
      a.free(id);
    }
  }
  t.equal(a.allocatedCount, used.size);
});

t.test('min-heap pops in order', async t => {
  const h = new MinHeap();
  const xs = [5, 3, 9, 1, 1, 7, 0, 12, 4];
  xs.forEach(x => h.push(x));
  const out: number[] = [];
  while (h.size) out.push(h.pop()!);
  t.same(
    out,
    [...xs].sort((a, b) => a - b),
  );
  t.equal(h.pop(), undefined);
});
