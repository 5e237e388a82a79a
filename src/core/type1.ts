/**
 * A simulated VFIO Type1 IOMMU container (drivers/vfio/vfio_iommu_type1.c as
 * of 4.10): the user's DMA mappings and the pages devices pin in them.
 *
 * A "user pfn" is what 4.10's vfio_pin_pages() takes: an IOVA page number
 * (the guest-physical page), looked up with vfio_find_dma(iova = pfn << 12).
 * The host pfn backs the mapping's vaddr page: one fake host page per pinned
 * vaddr page, stable while any pin holds it.
 */
import type { DmaUnmapEvent } from './api.js';
import { IOMMU_READ, IOMMU_WRITE } from './api.js';
import type { Type1Container } from './model.js';
import type { DeviceImpl } from './objects.js';
import { MdevError } from './errno.js';

export const PAGE_SHIFT = 12;
export const PAGE_SIZE = 1 << PAGE_SHIFT;
/** Where fake host page numbers start (2 GiB): visibly unlike small user pfns. */
const HOST_PFN_BASE = 0x80000;

export interface Type1Backend {
  /** Call the device's DMA-unmap notifier (bounded); must not throw. */
  notifyUnmap(dev: DeviceImpl, event: DmaUnmapEvent): Promise<void>;
}

interface DmaMapping {
  readonly vaddr: number;
  readonly iova: number;
  readonly size: number;
  readonly prot: number;
}

interface PinnedPage {
  readonly mapping: DmaMapping;
  readonly vaddrPfn: number;
  readonly hostPfn: number;
  refs: number;
  readonly byDevice: Map<DeviceImpl, number>;
}

const aligned = (n: number): boolean => Number.isSafeInteger(n) && n >= 0 && n % PAGE_SIZE === 0;

export class Type1ContainerImpl implements Type1Container {
  readonly pinning: boolean;
  readonly lockedLimitPages: number;
  readonly #backend: Type1Backend;
  /** Sorted by iova, non-overlapping. */
  readonly #mappings: DmaMapping[] = [];
  /** iova pfn → pin. */
  readonly #pins = new Map<number, PinnedPage>();
  /** vaddr pfn → host pfn and how many iova pins share it. */
  readonly #host = new Map<number, { hostPfn: number; refs: number }>();
  #nextHostPfn = HOST_PFN_BASE;

  constructor(backend: Type1Backend, opts: { pinning?: boolean; lockedLimitPages?: number } = {}) {
    this.#backend = backend;
    this.pinning = opts.pinning ?? true;
    this.lockedLimitPages = opts.lockedLimitPages ?? Number.POSITIVE_INFINITY;
  }

  isOwnedBy(backend: Type1Backend): boolean {
    return this.#backend === backend;
  }

  get lockedPages(): number {
    return this.#pins.size;
  }

  mapDma(m: { vaddr: number; iova: number; size: number; prot: number }): void {
    if (!m || !aligned(m.vaddr) || !aligned(m.iova) || !aligned(m.size) || m.size === 0) {
      throw new MdevError('EINVAL', 'mapDma: vaddr, iova and size must be page aligned and size non-zero');
    }
    if (!Number.isInteger(m.prot) || (m.prot & (IOMMU_READ | IOMMU_WRITE)) === 0 || (m.prot & ~(IOMMU_READ | IOMMU_WRITE)) !== 0) {
      throw new MdevError('EINVAL', 'mapDma: prot must be IOMMU_READ and/or IOMMU_WRITE');
    }
    const i = this.#firstEndingAfter(m.iova);
    const next = this.#mappings[i];
    if (next && next.iova < m.iova + m.size) throw new MdevError('EEXIST', `mapDma: iova 0x${m.iova.toString(16)} overlaps a mapping`);
    this.#mappings.splice(i, 0, Object.freeze({ vaddr: m.vaddr, iova: m.iova, size: m.size, prot: m.prot }));
  }

  async unmapDma(iova: number, size: number): Promise<void> {
    if (!aligned(iova) || !aligned(size) || size === 0) {
      throw new MdevError('EINVAL', 'unmapDma: iova and size must be page aligned and size non-zero');
    }
    const end = iova + size;
    const inRange: DmaMapping[] = [];
    for (let i = this.#firstEndingAfter(iova); i < this.#mappings.length; i++) {
      const m = this.#mappings[i]!;
      if (m.iova >= end) break;
      // Type1 v2 cannot split a mapping.
      if (m.iova < iova || m.iova + m.size > end) throw new MdevError('EINVAL', 'unmapDma: range splits a mapping');
      inRange.push(m);
    }
    // VFIO_IOMMU_NOTIFY_DMA_UNMAP, once per mapping, to every device holding pins in it.
    for (const m of inRange) {
      for (const dev of this.#pinnersOf(m)) {
        await this.#backend.notifyUnmap(dev, { iova: m.iova, size: m.size });
      }
    }
    const busy = inRange.filter(m => this.#pinnersOf(m).size > 0);
    if (busy.length > 0) {
      throw new MdevError('EBUSY', `unmapDma: pages at iova 0x${busy[0]!.iova.toString(16)} are still pinned`);
    }
    for (const m of inRange) this.#mappings.splice(this.#mappings.indexOf(m), 1);
  }

  /** Pin for `dev`, all or nothing. The caller has checked the list, the device and the backend. */
  pin(dev: DeviceImpl, userPfns: readonly number[], prot: number): number[] {
    const targets: DmaMapping[] = [];
    let fresh = 0;
    const seen = new Set<number>();
    for (const pfn of userPfns) {
      if (!Number.isSafeInteger(pfn) || pfn < 0) throw new MdevError('EINVAL', `pinPages: bad pfn ${String(pfn)}`);
      const m = this.#find(pfn * PAGE_SIZE);
      if (!m) throw new MdevError('EINVAL', `pinPages: pfn 0x${pfn.toString(16)} is not in any DMA mapping`);
      if ((m.prot & prot) !== prot) throw new MdevError('EPERM', `pinPages: pfn 0x${pfn.toString(16)}: protection exceeds the mapping's`);
      targets.push(m);
      if (!this.#pins.has(pfn) && !seen.has(pfn)) fresh++;
      seen.add(pfn);
    }
    if (this.#pins.size + fresh > this.lockedLimitPages) {
      throw new MdevError('ENOMEM', `pinPages: locked-memory limit of ${this.lockedLimitPages} pages reached`);
    }
    return userPfns.map((pfn, i) => {
      let p = this.#pins.get(pfn);
      if (!p) {
        const m = targets[i]!;
        const vaddrPfn = (m.vaddr + (pfn * PAGE_SIZE - m.iova)) / PAGE_SIZE;
        let h = this.#host.get(vaddrPfn);
        if (!h) this.#host.set(vaddrPfn, (h = { hostPfn: this.#nextHostPfn++, refs: 0 }));
        h.refs++;
        p = { mapping: m, vaddrPfn, hostPfn: h.hostPfn, refs: 0, byDevice: new Map() };
        this.#pins.set(pfn, p);
      }
      p.refs++;
      p.byDevice.set(dev, (p.byDevice.get(dev) ?? 0) + 1);
      return p.hostPfn;
    });
  }

  /**
   * Unpin for `dev`. As 4.10's type1: stops at the first pfn outside every
   * mapping and returns how many entries it processed; a pfn this device has
   * not pinned counts but does nothing.
   */
  unpin(dev: DeviceImpl, userPfns: readonly number[]): number {
    let i = 0;
    for (; i < userPfns.length; i++) {
      const pfn = userPfns[i]!;
      if (!Number.isSafeInteger(pfn) || pfn < 0 || !this.#find(pfn * PAGE_SIZE)) break;
      const p = this.#pins.get(pfn);
      const mine = p?.byDevice.get(dev);
      if (!p || mine === undefined) continue;
      if (mine > 1) p.byDevice.set(dev, mine - 1);
      else p.byDevice.delete(dev);
      if (--p.refs === 0) this.#drop(pfn, p);
    }
    return i;
  }

  /** Drop every pin `dev` still holds (its last close); returns how many references went. */
  releaseDevice(dev: DeviceImpl): number {
    let n = 0;
    for (const [pfn, p] of this.#pins) {
      const mine = p.byDevice.get(dev);
      if (mine === undefined) continue;
      n += mine;
      p.byDevice.delete(dev);
      p.refs -= mine;
      if (p.refs === 0) this.#drop(pfn, p);
    }
    return n;
  }

  /** How many references `dev` holds on `pfn` (tests and diagnostics). */
  pinCount(dev: DeviceImpl, pfn: number): number {
    return this.#pins.get(pfn)?.byDevice.get(dev) ?? 0;
  }

  get mappings(): ReadonlyArray<Readonly<DmaMapping>> {
    return this.#mappings;
  }

  #drop(pfn: number, p: PinnedPage): void {
    this.#pins.delete(pfn);
    const h = this.#host.get(p.vaddrPfn);
    if (h && --h.refs === 0) this.#host.delete(p.vaddrPfn);
  }

  #pinnersOf(m: DmaMapping): Set<DeviceImpl> {
    const devs = new Set<DeviceImpl>();
    for (const p of this.#pins.values()) {
      if (p.mapping === m) for (const d of p.byDevice.keys()) devs.add(d);
    }
    return devs;
  }

  /** Index of the first mapping whose end is above `iova`. */
  #firstEndingAfter(iova: number): number {
    let lo = 0;
    let hi = this.#mappings.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const m = this.#mappings[mid]!;
      if (m.iova + m.size <= iova) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  #find(iova: number): DmaMapping | undefined {
    const m = this.#mappings[this.#firstEndingAfter(iova)];
    return m && m.iova <= iova ? m : undefined;
  }
}
