/**
 * The skeleton of /sys that every region hangs its nodes on (bus/, class/,
 * devices/, kernel/iommu_groups), and the directories that exist only as path
 * components of something else, which go away with their last child (as
 * get_device_parent()'s glue and class directories do).
 */
import { KDir, KernfsRoot, type KNode } from '../kernfs/index.js';

/**
 * The mdev framework's own directories: the emulator's alone, so over an
 * overlay a host's real mediated devices and parents never show through.
 */
export const FRAMEWORK_DIRS: readonly string[] = ['/class/mdev_bus', '/bus/mdev'];

export class SysfsTree {
  readonly root = new KernfsRoot();
  readonly bus: KDir;
  readonly classDir: KDir;
  readonly devicesDir: KDir;
  readonly groupsDir: KDir;
  /** Directories created only as path components (pruned when empty). */
  readonly #implicit = new Set<KDir>();

  constructor() {
    const r = this.root;
    this.bus = r.mkdir('bus');
    this.classDir = r.mkdir('class');
    this.devicesDir = r.mkdir('devices');
    this.devicesDir.mkdir('virtual');
    this.groupsDir = r.mkdir('kernel').mkdir('iommu_groups');
  }

  /** ensurePath that remembers which directories it had to create. */
  ensureImplicit(base: KDir, rel: string): KDir {
    let d = base;
    for (const c of rel.split('/')) {
      if (!c) continue;
      const existing = d.get(c);
      if (existing instanceof KDir) {
        d = existing;
      } else {
        d = d.mkdir(c);
        this.#implicit.add(d);
      }
    }
    return d;
  }

  isImplicit(d: KDir): boolean {
    return this.#implicit.has(d);
  }

  /** A directory made as a path component becomes a real one (a parent took it over). */
  claim(d: KDir): void {
    this.#implicit.delete(d);
  }

  /** A real directory that still has children stays as a path component. */
  release(d: KDir): void {
    this.#implicit.add(d);
  }

  /** Remove a node, then any implicit directories that its removal left empty. */
  removePruning(n: KNode): void {
    const up = n.parent;
    n.remove();
    let d: KDir | null = up;
    while (d && this.#implicit.has(d) && d.children.size === 0) {
      const next: KDir | null = d.parent;
      this.#implicit.delete(d);
      d.remove();
      d = next;
    }
  }
}
