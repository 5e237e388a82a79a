/**
 * /sys/kernel/iommu_groups/<N>: the groups of mediated devices (drivers/iommu/
 * iommu.c iommu_group_add_device; the modern profile's group is VFIO's
 * no-IOMMU one, drivers/vfio/group.c vfio_noiommu_group_alloc) and a parent's
 * own physical group.
 */
import { MdevError } from '../core/errno.js';
import type { MdevCoreApi } from '../core/model.js';
import { KDir, type KLink, type KNode } from '../kernfs/index.js';
import { constant } from './driver-core.js';
import type { SysfsTree } from './tree.js';

/** A device's `iommu_group` link and the group's link back to it. */
export interface GroupLinks {
  id: number;
  link: KLink;
  backLink: KLink;
}

/** What the groups keep of a device: its links to a group. */
export interface GroupedRec {
  dir: KDir;
  uuid: string;
  group?: GroupLinks;
}

interface GroupRec {
  dir: KDir;
  devices: KDir;
  /** Devices whose iommu_group link points here. */
  users: Set<GroupedRec>;
}

export class IommuGroups {
  readonly #groups = new Map<number, GroupRec>();

  constructor(
    private readonly tree: SysfsTree,
    private readonly core: MdevCoreApi,
  ) {}

  /** Every mediated device's group, and no other. */
  syncAll(): void {
    const want = new Set(this.core.iommuGroups());
    for (const id of want) this.#ensure(id);
    for (const id of [...this.#groups.keys()]) if (!want.has(id)) this.#drop(id);
  }

  /** Group `id` exists exactly while the core has it. */
  sync(id: number): void {
    if (this.#has(id)) this.#ensure(id);
    else this.#drop(id);
  }

  /** The device's group links: to group `id`, or none. */
  link(rec: GroupedRec, id: number | undefined): void {
    if (id === undefined) {
      this.unlink(rec);
      return;
    }
    const g = this.#ensure(id);
    const have = rec.group;
    if (have && have.id === id && !have.link.dead && !have.backLink.dead) return;
    this.unlink(rec);
    rec.group = { id, link: rec.dir.symlink('iommu_group', g.dir), backLink: g.devices.symlink(rec.uuid, rec.dir) };
    g.users.add(rec);
  }

  unlink(rec: GroupedRec): void {
    const have = rec.group;
    if (!have) return;
    rec.group = undefined;
    this.#groups.get(have.id)?.users.delete(rec);
    have.link.remove();
    have.backLink.remove();
  }

  /**
   * A parent's own (physical) group: the directory if no one made it yet, and
   * the parent's link in devices/. Returns the group dir and what was made.
   */
  parentGroup(id: number, name: string, dir: KDir, made: (n: KNode) => void): KDir {
    const gname = String(id);
    let g = this.tree.groupsDir.get(gname);
    if (!(g instanceof KDir)) {
      const gd = this.tree.groupsDir.mkdir(gname);
      gd.opaque = true;
      gd.mkdir('devices');
      if (this.core.profile === 'modern') {
        gd.attr('reserved_regions', 0o444, constant('0x00000000fee00000 0x00000000feefffff msi\n'));
        gd.attr('type', 0o644, {
          show: () => 'DMA\n',
          store: () => {
            throw new MdevError('EBUSY');
          },
        });
      }
      made(gd);
      g = gd;
    }
    const gdevs = (g as KDir).get('devices') as KDir;
    if (!gdevs.has(name)) made(gdevs.symlink(name, dir));
    return g as KDir;
  }

  /**
   * Whether the core has group `id`. Without an O(1) membership test on
   * iommuGroups(), ask groupDevices() (a mediated device's group exists
   * exactly while it holds its device), so bulk creates stay linear.
   */
  #has(id: number): boolean {
    const groups = this.core.iommuGroups() as Iterable<number> & { has?: (n: number) => boolean };
    if (typeof groups.has === 'function') return groups.has(id);
    for (const _ of this.core.groupDevices(id)) return true;
    return false;
  }

  #ensure(id: number): GroupRec {
    const have = this.#groups.get(id);
    if (have && !have.dir.dead) return have;
    const name = String(id);
    const stale = this.tree.groupsDir.get(name);
    if (stale && !stale.dead) {
      if (have || !(stale instanceof KDir)) stale.remove();
      else throw new MdevError('EEXIST', `iommu group ${id} is already a parent device's group`);
    }
    const dir = this.tree.groupsDir.mkdir(name);
    dir.opaque = true;
    const devices = dir.mkdir('devices');
    if (this.core.profile === 'modern') {
      // vfio_noiommu_group_alloc → iommu_group_set_name
      dir.attr('name', 0o444, constant('vfio-noiommu\n'));
      dir.attr('reserved_regions', 0o444, constant(''));
      dir.attr('type', 0o644, {
        show: () => 'unknown\n',
        store: () => {
          throw new MdevError('EINVAL');
        }, // no default domain
      });
    }
    const g: GroupRec = { dir, devices, users: new Set() };
    this.#groups.set(id, g);
    return g;
  }

  #drop(id: number): void {
    const g = this.#groups.get(id);
    if (!g) return;
    for (const rec of [...g.users]) this.unlink(rec);
    g.dir.remove();
    this.#groups.delete(id);
  }
}
