/**
 * The VFIO objects of a bound mdev: the group char device
 * /sys/devices/virtual/vfio/<N> with class/vfio/<N> (drivers/vfio/group.c
 * vfio_create_group; both profiles) and the per-device
 * <uuid>/vfio-dev/vfio<k> with class/vfio-dev/vfio<k> (drivers/vfio/
 * vfio_main.c vfio_device_add; modern only). Each, having a device number,
 * also gets its /sys/dev/char/<major>:<minor> link (drivers/base/core.c
 * device_add → device_create_sys_dev_entry). See docs/abi.md.
 */
import type { Profile } from '../core/api.js';
import { VFIO_DEV_MAJOR, VFIO_GROUP_MAJOR, type CoreDevice } from '../core/model.js';
import { KDir, type KLink } from '../kernfs/index.js';
import { addCharDevFiles } from './driver-core.js';
import type { SysfsTree } from './tree.js';
import type { UeventFiles } from './uevent-files.js';

/** What the VFIO objects keep of a device. */
export interface VfioRec {
  dir: KDir;
  /** /sys/devices/virtual/vfio/<N> (the group char device) and class/vfio/<N>. */
  vfioGroup?: { id: number; minor: number; dir: KDir; classLink: KLink; devLink: KLink };
  /** <uuid>/vfio-dev/vfio<k> and class/vfio-dev/vfio<k>. */
  vfioDev?: { k: number; glue: KDir; dir: KDir; classLink: KLink; devLink: KLink };
}

export class VfioObjects {
  constructor(
    private readonly tree: SysfsTree,
    private readonly uevents: UeventFiles,
    private readonly profile: Profile,
  ) {}

  /** The device's VFIO objects, as its vfioGroupMinor and vfioDevIndex say, once its probe has made them. */
  sync(rec: VfioRec, dev: CoreDevice): void {
    const group = dev.iommuGroup;
    const minor = dev.vfioGroupMinor;
    if (dev.probed && minor !== undefined && group !== undefined) {
      const have = rec.vfioGroup;
      if (!have || have.id !== group || have.minor !== minor || have.dir.dead || have.classLink.dead) {
        this.#dropGroup(rec);
        const name = String(group);
        const container = this.tree.ensureImplicit(this.tree.devicesDir, 'virtual/vfio');
        container.removeChild(name); // a stale one
        const dir = container.mkdir(name);
        dir.opaque = true;
        const cls = this.tree.ensureImplicit(this.tree.classDir, 'vfio');
        addCharDevFiles(dir, VFIO_GROUP_MAJOR, minor, `vfio/${name}`, cls, this.uevents, 'vfio', this.profile);
        cls.removeChild(name);
        rec.vfioGroup = { id: group, minor, dir, classLink: cls.symlink(name, dir), devLink: this.#devLink(VFIO_GROUP_MAJOR, minor, dir) };
      }
    } else {
      this.#dropGroup(rec);
    }

    const k = dev.vfioDevIndex;
    if (dev.probed && k !== undefined) {
      const have = rec.vfioDev;
      if (!have || have.k !== k || have.dir.dead || have.classLink.dead) {
        this.#dropDev(rec);
        const name = `vfio${k}`;
        // The class glue directory (get_device_parent): created with its first
        // device, removed with its last.
        const existing = rec.dir.get('vfio-dev');
        const glue = existing instanceof KDir ? existing : rec.dir.mkdir('vfio-dev');
        const dir = glue.mkdir(name);
        const cls = this.tree.ensureImplicit(this.tree.classDir, 'vfio-dev');
        addCharDevFiles(dir, VFIO_DEV_MAJOR, k, `vfio/devices/${name}`, cls, this.uevents, 'vfio-dev', this.profile);
        dir.symlink('device', rec.dir);
        cls.removeChild(name);
        rec.vfioDev = { k, glue, dir, classLink: cls.symlink(name, dir), devLink: this.#devLink(VFIO_DEV_MAJOR, k, dir) };
      }
    } else {
      this.#dropDev(rec);
    }
  }

  /** /sys/dev/char/<major>:<minor> (device_create_sys_dev_entry); the directory goes with its last link. */
  #devLink(major: number, minor: number, dir: KDir): KLink {
    const chr = this.tree.ensureImplicit(this.tree.root, 'dev/char');
    const name = `${major}:${minor}`;
    chr.removeChild(name); // a stale one
    return chr.symlink(name, dir);
  }

  drop(rec: VfioRec): void {
    this.#dropDev(rec);
    this.#dropGroup(rec);
  }

  #dropGroup(rec: VfioRec): void {
    const g = rec.vfioGroup;
    if (!g) return;
    rec.vfioGroup = undefined;
    this.tree.removePruning(g.devLink);
    this.tree.removePruning(g.classLink);
    this.tree.removePruning(g.dir);
  }

  #dropDev(rec: VfioRec): void {
    const v = rec.vfioDev;
    if (!v) return;
    rec.vfioDev = undefined;
    this.tree.removePruning(v.devLink);
    this.tree.removePruning(v.classLink);
    v.dir.remove();
    if (v.glue.children.size === 0) v.glue.remove();
  }
}
