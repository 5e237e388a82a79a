/**
 * IOMMU group ids for mediated devices: lowest free id first (the kernel's
 * ida), skipping ids that parents (e.g. PCI functions) already own.
 * O(log n) per operation: a min-heap of freed ids below a high-water mark.
 */
import { MdevError } from './errno.js';
import { MinHeap } from './min-heap.js';

export class IommuGroupAllocator {
  /** Every id below this has been handed out at least once. */
  #highWater = 0;
  /** Freed ids below the high-water mark; may hold ids reserved since (skipped lazily). */
  readonly #freed = new MinHeap();
  readonly #inHeap = new Set<number>();
  readonly #allocated = new Set<number>();
  /** Reserved id → how many parents reserve it (PCI functions can share a group). */
  readonly #reserved = new Map<number, number>();

  allocate(): number {
    while (this.#freed.size > 0) {
      const id = this.#freed.pop()!;
      this.#inHeap.delete(id);
      if (!this.#reserved.has(id)) return this.#take(id);
    }
    while (this.#reserved.has(this.#highWater)) this.#highWater++;
    return this.#take(this.#highWater++);
  }

  free(id: number): void {
    if (!this.#allocated.delete(id)) return;
    this.#pushFree(id);
  }

  isAllocated(id: number): boolean {
    return this.#allocated.has(id);
  }
  isReserved(id: number): boolean {
    return this.#reserved.has(id);
  }
  get allocatedCount(): number {
    return this.#allocated.size;
  }
  allocated(): Iterable<number> {
    return this.#allocated;
  }

  /** A parent's own group. EBUSY if a mediated device holds that id now. */
  reserve(id: number): void {
    if (this.#allocated.has(id)) throw new MdevError('EBUSY', `IOMMU group ${id} is in use by a mediated device`);
    this.#reserved.set(id, (this.#reserved.get(id) ?? 0) + 1);
  }

  unreserve(id: number): void {
    const n = this.#reserved.get(id);
    if (n === undefined) return;
    if (n > 1) {
      this.#reserved.set(id, n - 1);
      return;
    }
    this.#reserved.delete(id);
    this.#pushFree(id);
  }

  #take(id: number): number {
    this.#allocated.add(id);
    return id;
  }

  #pushFree(id: number): void {
    // Ids at or above the high-water mark are implicitly free.
    if (id < this.#highWater && !this.#inHeap.has(id) && !this.#allocated.has(id)) {
      this.#freed.push(id);
      this.#inHeap.add(id);
    }
  }
}
