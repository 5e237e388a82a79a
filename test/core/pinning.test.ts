import t from 'tap';
import { IOMMU_READ, IOMMU_WRITE, type DmaUnmapEvent, type MdevDevice, type ParentOps } from '../../src/core/api.js';
import type { Type1Container } from '../../src/core/model.js';
import { errnoOf, harness, register, uuid } from './helpers.js';

const PAGE = 4096;
const RW = IOMMU_READ | IOMMU_WRITE;

/** A core with one open device in a container mapping iova [0, 16 pages) from vaddr 1 GiB. */
async function setup(extra: Partial<ParentOps> = {}, container: { pinning?: boolean; lockedLimitPages?: number } = {}) {
  const h = harness();
  const events: Array<{ uuid: string } & DmaUnmapEvent> = [];
  let autoUnpin = true;
  const pinned = new Map<string, number[]>();
  const { type } = await register(h, 'mtty', {
    notifier: async (dev, ev) => {
      events.push({ uuid: dev.uuid, ...ev });
      if (!autoUnpin) return;
      const mine = (pinned.get(dev.uuid) ?? []).filter(p => p * PAGE >= ev.iova && p * PAGE < ev.iova + ev.size);
      if (mine.length) await h.core.host.unpinPages(dev, mine);
      pinned.set(
        dev.uuid,
        (pinned.get(dev.uuid) ?? []).filter(p => !mine.includes(p)),
      );
    },
    ...extra,
  });
  const dev = await h.core.create(type, uuid(1));
  const c = h.core.vfio.createContainer(container);
  c.mapDma({ vaddr: 1 << 30, iova: 0, size: 16 * PAGE, prot: RW });
  const fd = await h.core.vfio.open(uuid(1), { container: c });
  const pin = async (d: MdevDevice, pfns: number[], prot = RW) => {
    const r = await h.core.host.pinPages(d, pfns, prot);
    pinned.set(d.uuid, [...(pinned.get(d.uuid) ?? []), ...pfns]);
    return r;
  };
  return {
    h,
    type,
    dev,
    c,
    fd,
    events,
    pin,
    setAutoUnpin: (v: boolean) => {
      autoUnpin = v;
    },
  };
}

t.test('pinPages argument and state errors, in kernel order', async t => {
  const { h, dev, fd, type } = await setup();
  t.equal(await errnoOf(h.core.host.pinPages(dev, [], RW)), 'EINVAL', 'no pfns');
  t.equal(await errnoOf(h.core.host.pinPages(dev, new Array(513).fill(0), RW)), 'E2BIG');
  t.equal((await h.core.host.pinPages(dev, new Array(512).fill(0), RW)).length, 512, '512 is allowed');
  const other = await h.core.create(type, uuid(2));
  t.equal(await errnoOf(h.core.host.pinPages(other, [0], RW)), 'EINVAL', 'device not open');
  const fd2 = await h.core.vfio.open(uuid(2));
  t.equal(await errnoOf(h.core.host.pinPages(other, [0], RW)), 'EINVAL', 'open without a container');
  await fd2.close();
  t.equal(await errnoOf(h.core.host.pinPages({ uuid: uuid(1) } as MdevDevice, [0], RW)), 'EINVAL', 'not a device object');
  t.equal(await errnoOf(h.core.host.pinPages(dev, [16], RW)), 'EINVAL', 'pfn outside every mapping');
  t.equal(await errnoOf(h.core.host.pinPages(dev, [-1], RW)), 'EINVAL');
  t.equal(await errnoOf(h.core.host.pinPages(dev, [1.5], RW)), 'EINVAL');
  await fd.close();
  t.equal(await errnoOf(h.core.host.pinPages(dev, [0], RW)), 'EINVAL', 'closed again');
});

t.test('ENOTTY without pinning support; EINVAL without a notifier', async t => {
  const a = await setup({}, { pinning: false });
  t.equal(await errnoOf(a.h.core.host.pinPages(a.dev, [0], RW)), 'ENOTTY');
  t.equal(await errnoOf(a.h.core.host.unpinPages(a.dev, [0])), 'ENOTTY');
  const b = await setup({ notifier: undefined });
  t.equal(await errnoOf(b.h.core.host.pinPages(b.dev, [0], RW)), 'EINVAL');
});

t.test('EPERM when prot exceeds the mapping; ENOMEM at the locked limit; all or nothing', async t => {
  const { h, dev, c } = await setup({}, { lockedLimitPages: 4 });
  c.mapDma({ vaddr: 2 * 2 ** 30, iova: 64 * PAGE, size: 4 * PAGE, prot: IOMMU_READ });
  t.same((await h.core.host.pinPages(dev, [64], IOMMU_READ)).length, 1);
  t.equal(await errnoOf(h.core.host.pinPages(dev, [0, 65], IOMMU_WRITE)), 'EPERM');
  t.equal(c.lockedPages, 1, 'the failed call pinned nothing');
  await h.core.host.pinPages(dev, [0, 1, 1], RW);
  t.equal(c.lockedPages, 3);
  t.equal(await errnoOf(h.core.host.pinPages(dev, [2, 3], RW)), 'ENOMEM');
  t.equal(c.lockedPages, 3);
  await h.core.host.pinPages(dev, [2, 0], RW);
  t.equal(c.lockedPages, 4, 're-pinning a pinned page costs nothing');
});

t.test('host pfns: deterministic, stable while pinned, refcounted; aliases share a host page', async t => {
  const { h, dev, c } = await setup();
  const first = await h.core.host.pinPages(dev, [0, 1, 2], RW);
  t.equal(new Set(first).size, 3);
  t.same(await h.core.host.pinPages(dev, [2, 0], RW), [first[2], first[0]], 'same pfn, same host pfn');
  t.equal(c.lockedPages, 3);
  t.equal(await h.core.host.unpinPages(dev, [0]), 1);
  t.same(await h.core.host.pinPages(dev, [0], RW), [first[0]], 'still pinned once, so stable');
  c.mapDma({ vaddr: 1 << 30, iova: 100 * PAGE, size: PAGE, prot: RW }); // the same user page at a second iova
  t.same(await h.core.host.pinPages(dev, [100], RW), [first[0]]);
  const again = harness();
  const r = await register(again, 'mtty', { notifier() {} });
  const d2 = await again.core.create(r.type, uuid(1));
  const c2 = again.core.vfio.createContainer();
  c2.mapDma({ vaddr: 1 << 30, iova: 0, size: 16 * PAGE, prot: RW });
  const fd2 = await again.core.vfio.open(uuid(1), { container: c2 });
  t.same(await again.core.host.pinPages(d2, [0, 1, 2], RW), first, 'deterministic across runs');
  await fd2.close();
});

t.test('unpinPages: counts processed entries, stops outside the mappings', async t => {
  const { h, dev, c } = await setup();
  await h.core.host.pinPages(dev, [0, 1], RW);
  t.equal(await h.core.host.unpinPages(dev, [0, 5, 99, 1]), 2, 'stops at pfn 99; pfn 5 (never pinned) counts');
  t.equal(c.lockedPages, 1);
  t.equal(await h.core.host.unpinPages(dev, [1]), 1);
  t.equal(c.lockedPages, 0);
  t.equal(await errnoOf(h.core.host.unpinPages(dev, [])), 'EINVAL');
  t.equal(await errnoOf(h.core.host.unpinPages(dev, new Array(513).fill(0))), 'E2BIG');
});

t.test('unmapDma: notifies the devices holding pins, then removes the mapping', async t => {
  const { h, type, dev, c, events, pin } = await setup();
  const other = await h.core.create(type, uuid(2));
  const idle = await h.core.create(type, uuid(3));
  const fd2 = await h.core.vfio.open(other.uuid, { container: c });
  const fd3 = await h.core.vfio.open(idle.uuid, { container: c });
  await pin(dev, [1, 2]);
  await pin(other, [2, 3]);
  c.mapDma({ vaddr: 4 * 2 ** 30, iova: 32 * PAGE, size: 2 * PAGE, prot: RW });
  await c.unmapDma(0, 16 * PAGE);
  t.same(
    events,
    [
      { uuid: uuid(1), iova: 0, size: 16 * PAGE },
      { uuid: uuid(2), iova: 0, size: 16 * PAGE },
    ],
    'the whole mapping, once per pinning device; the idle device is not bothered',
  );
  t.equal(c.lockedPages, 0);
  t.equal(await errnoOf(h.core.host.pinPages(dev, [1], RW)), 'EINVAL', 'the mapping is gone');
  await c.unmapDma(200 * PAGE, PAGE); // nothing there: fine
  await Promise.all([fd2.close(), fd3.close()]);
});

t.test('unmapDma: EBUSY (mapping kept) if a plugin leaves pages pinned', async t => {
  const { dev, c, events, pin, setAutoUnpin } = await setup();
  setAutoUnpin(false);
  await pin(dev, [3]);
  t.equal(await errnoOf(c.unmapDma(0, 16 * PAGE)), 'EBUSY');
  t.equal(events.length, 1);
  t.equal(c.lockedPages, 1);
  t.same((await pin(dev, [4])).length, 1, 'the mapping is still there');
  setAutoUnpin(true);
  await c.unmapDma(0, 16 * PAGE);
  t.equal(c.lockedPages, 0);
});

t.test('a throwing or hanging notifier cannot wedge unmapDma', async t => {
  const h = harness('modern', { callTimeoutMs: 20 });
  const { type } = await register(h, 'mtty', { notifier: () => new Promise<void>(() => {}) });
  const dev = await h.core.create(type, uuid(1));
  const c = h.core.vfio.createContainer();
  c.mapDma({ vaddr: 0, iova: 0, size: PAGE, prot: RW });
  const fd = await h.core.vfio.open(uuid(1), { container: c });
  await h.core.host.pinPages(dev, [0], RW);
  t.equal(await errnoOf(c.unmapDma(0, PAGE)), 'EBUSY');
  t.match(h.logs.join('\n'), /notifier.*did not settle/);
  await fd.close();
  t.equal(c.lockedPages, 0, 'the last close drops leftover pins');
  t.match(h.logs.join('\n'), /released 1 page pin/);
  await c.unmapDma(0, PAGE);
});

t.test('mapDma / unmapDma argument rules', async t => {
  const h = harness();
  const c: Type1Container = h.core.vfio.createContainer();
  for (const m of [
    { vaddr: 1, iova: 0, size: PAGE, prot: RW },
    { vaddr: 0, iova: 1, size: PAGE, prot: RW },
    { vaddr: 0, iova: 0, size: 0, prot: RW },
    { vaddr: 0, iova: 0, size: 100, prot: RW },
    { vaddr: 0, iova: 0, size: PAGE, prot: 0 },
    { vaddr: 0, iova: 0, size: PAGE, prot: 4 },
  ])
    t.equal(await errnoOf(() => c.mapDma(m)), 'EINVAL', JSON.stringify(m));
  c.mapDma({ vaddr: 0, iova: 4 * PAGE, size: 4 * PAGE, prot: RW });
  t.equal(await errnoOf(() => c.mapDma({ vaddr: 0, iova: 7 * PAGE, size: PAGE, prot: RW })), 'EEXIST');
  t.equal(await errnoOf(() => c.mapDma({ vaddr: 0, iova: 0, size: 5 * PAGE, prot: RW })), 'EEXIST');
  c.mapDma({ vaddr: 0, iova: 0, size: 4 * PAGE, prot: RW });
  c.mapDma({ vaddr: 0, iova: 8 * PAGE, size: PAGE, prot: RW });
  t.equal(await errnoOf(c.unmapDma(5 * PAGE, PAGE)), 'EINVAL', 'cannot split a mapping');
  t.equal(await errnoOf(c.unmapDma(0, 0)), 'EINVAL');
  t.equal(await errnoOf(c.unmapDma(1, PAGE)), 'EINVAL');
  await c.unmapDma(0, 9 * PAGE);
  c.mapDma({ vaddr: 0, iova: 0, size: 9 * PAGE, prot: RW });
  t.pass('all three mappings went');
});
