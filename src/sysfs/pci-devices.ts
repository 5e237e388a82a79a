/**
 * PCI functions that plugins add (core/pci-devices.ts): the function's
 * directory with its identity files, `subsystem`, /sys/bus/pci/devices/<addr>,
 * the `driver` link and its back-link while bound, `iommu_group`, `uevent`,
 * `power/`; a PF's SR-IOV files and `virtfn<i>` links, a VF's `physfn`
 * (drivers/pci/iov.c sriov_pf_dev_attrs, pci_iov_sysfs_link; pci-sysfs.c).
 *
 * Like every region, it reconciles: sync(dev) makes the nodes agree with the
 * function's state, whatever change was announced. A parent registered on a
 * function (parents.ts) adds its mdev files to this directory.
 */
import { MdevError } from '../core/errno.js';
import type { CorePciDevice, MdevCoreApi } from '../core/model.js';
import type { KDir, KLink, KNode } from '../kernfs/index.js';
import type { PluginAttrs } from './attrs.js';
import type { MdevBus } from './bus.js';
import { addPower, constant } from './driver-core.js';
import type { IommuGroups } from './iommu-groups.js';
import { kstrtobool, kstrtoul } from './kstrtoul.js';
import type { SysfsTree } from './tree.js';
import type { UeventFiles } from './uevent-files.js';

interface PciRec {
  dev: CorePciDevice;
  dir: KDir;
  /** Nodes in `dir` made for the function. */
  owned: KNode[];
  /** Nodes elsewhere (bus/pci/devices link, the group's link). */
  external: KNode[];
  /** `driver` and the driver's link back, while bound. */
  bound?: { driver: string; link: KLink; back: KLink; files: KNode[] };
  physfn?: KLink;
  virtfns: Map<number, KLink>;
}

export class PresentedPciDevices {
  readonly #recs = new Map<string, PciRec>();

  constructor(
    private readonly tree: SysfsTree,
    private readonly core: MdevCoreApi,
    private readonly bus: MdevBus,
    private readonly groups: IommuGroups,
    private readonly attrs: PluginAttrs,
    private readonly uevents: UeventFiles,
  ) {}

  /** The function's directory, if presented (a parent on it adds to it). */
  dir(name: string): KDir | undefined {
    return this.#recs.get(name)?.dir;
  }

  syncAll(): void {
    for (const [name, rec] of this.#recs) if (this.core.pciDevice(name) !== rec.dev) this.#teardown(rec);
    for (const d of this.core.pciDevices()) this.sync(d);
    // A PF listed before its VFs links them now.
    for (const rec of this.#recs.values()) this.#syncLinks(rec);
  }

  sync(dev: CorePciDevice): void {
    const live = dev.state === 'live' && this.core.pciDevice(dev.name) === dev;
    let rec = this.#recs.get(dev.name);
    if (rec && (rec.dev !== dev || !live)) {
      this.#teardown(rec);
      rec = undefined;
    }
    if (live) {
      rec ??= this.#build(dev);
      this.#syncDriver(rec);
      this.#syncLinks(rec);
    }
    const pf = dev.physfn ? this.#recs.get(dev.physfn.name) : undefined;
    if (pf) this.#syncLinks(pf);
  }

  #build(dev: CorePciDevice): PciRec {
    const spec = dev.device;
    const parts = spec.path.split('/');
    const name = parts.pop()!;
    const container = this.tree.ensureImplicit(this.tree.root, parts.join('/'));
    if (container.has(name)) throw new MdevError('EEXIST', `${spec.path} exists`);
    const dir = container.mkdir(name);
    dir.opaque = true; // the emulated function is the whole function, over an overlay too
    const rec: PciRec = { dev, dir, owned: [], external: [], virtfns: new Map() };
    const own = (n: KNode): void => void rec.owned.push(n);
    this.#recs.set(dev.name, rec);

    // The identity files first; a vendor `uevent` shows the variables, a write to it is the driver core's.
    for (const g of spec.attrs ?? []) {
      const vendorUevent = g.name ? undefined : g.attrs.find(a => a.name === 'uevent' && a.show);
      if (vendorUevent) own(this.uevents.add({ dir, subsystem: 'pci' }, () => this.attrs.show(vendorUevent, dev, dev.name)));
      this.attrs.addGroup(dir, vendorUevent ? { ...g, attrs: g.attrs.filter(a => a !== vendorUevent) } : g, dev, own, dev.name);
    }
    if (!dir.has('uevent')) own(this.uevents.add({ dir, subsystem: 'pci' }, () => (dev.driver ? `DRIVER=${dev.driver}\n` : '')));
    const pci = this.bus.ensureOtherBus('pci');
    own(dir.symlink('subsystem', pci));
    rec.external.push((pci.get('devices') as KDir).symlink(name, dir));
    if (spec.iommuGroup !== undefined) {
      const g = this.groups.parentGroup(spec.iommuGroup, name, dir, n => void rec.external.push(n));
      own(dir.symlink('iommu_group', g));
    }
    if (!dir.has('power')) own(addPower(dir, this.core.profile));
    if (spec.sriov) this.#sriovFiles(rec, own);
    return rec;
  }

  /** sriov_pf_dev_attrs (drivers/pci/iov.c): the PF's SR-IOV files. */
  #sriovFiles(rec: PciRec, own: (n: KNode) => void): void {
    const { dir, dev } = rec;
    const s = dev.device.sriov!;
    own(dir.attr('sriov_totalvfs', 0o444, constant(`${s.totalVfs}\n`)));
    own(
      dir.attr('sriov_numvfs', 0o664, {
        show: () => `${dev.numVfs}\n`,
        store: async data => {
          const n = kstrtoul(data); // kstrtou16
          if (n > 0xffffn) throw new MdevError('ERANGE', 'sriov_numvfs: not a u16');
          await this.core.setNumVfs(dev, Number(n));
        },
      }),
    );
    own(dir.attr('sriov_offset', 0o444, constant(`${s.offset}\n`)));
    own(dir.attr('sriov_stride', 0o444, constant(`${s.stride}\n`)));
    own(dir.attr('sriov_vf_device', 0o444, constant(`${s.vfDevice.toString(16)}\n`)));
    own(
      dir.attr('sriov_drivers_autoprobe', 0o644, {
        show: () => `${dev.autoprobe ? 1 : 0}\n`,
        store: data => this.core.setVfAutoprobe(dev, kstrtobool(data)),
      }),
    );
  }

  /** `driver` -> bus/pci/drivers/<drv> and the driver's link back while bound; a VF driver's own files. */
  #syncDriver(rec: PciRec): void {
    const want = rec.dev.driver;
    if (rec.bound && rec.bound.driver !== want) {
      for (const n of [rec.bound.link, rec.bound.back, ...rec.bound.files]) if (!n.dead) n.remove();
      rec.bound = undefined;
    }
    if (want === undefined || rec.bound) return;
    const drivers = this.bus.ensureOtherBus('pci').get('drivers') as KDir;
    const drv = drivers.ensureDir(want);
    drv.opaque = true;
    const files: KNode[] = [];
    for (const g of rec.dev.driverAttrs) this.attrs.addGroup(rec.dir, g, rec.dev, n => void files.push(n), rec.dev.name);
    rec.bound = { driver: want, link: rec.dir.symlink('driver', drv), back: drv.symlink(rec.dev.name, rec.dir), files };
  }

  /** A VF's `physfn` and its PF's `virtfn<i>`, while the core has them linked. */
  #syncLinks(rec: PciRec): void {
    const { dev, dir } = rec;
    const pf = dev.physfn ? this.#recs.get(dev.physfn.name) : undefined;
    if (dev.linked && pf && !rec.physfn) rec.physfn = dir.symlink('physfn', pf.dir);
    if ((!dev.linked || !pf) && rec.physfn) {
      rec.physfn.remove();
      rec.physfn = undefined;
    }
    const want = new Map<number, KDir>();
    for (const vf of dev.virtfns) {
      const vrec = this.#recs.get(vf.name);
      if (vrec && vrec.dev.linked && vf.vfIndex !== undefined) want.set(vf.vfIndex, vrec.dir);
    }
    for (const [i, link] of rec.virtfns) {
      if (want.get(i) !== undefined && !link.dead) continue;
      if (!link.dead) link.remove();
      rec.virtfns.delete(i);
    }
    for (const [i, target] of want) if (!rec.virtfns.has(i)) rec.virtfns.set(i, dir.symlink(`virtfn${i}`, target));
  }

  #teardown(rec: PciRec): void {
    this.#recs.delete(rec.dev.name);
    if (rec.bound) for (const n of [rec.bound.link, rec.bound.back, ...rec.bound.files]) if (!n.dead) n.remove();
    for (const n of rec.external) if (!n.dead) this.tree.removePruning(n);
    for (const n of [...rec.virtfns.values(), rec.physfn]) if (n && !n.dead) n.remove();
    for (const n of rec.owned) if (!n.dead) n.remove();
    if (rec.dir.dead) return;
    if (rec.dir.children.size === 0) this.tree.removePruning(rec.dir);
    else this.tree.release(rec.dir); // a parent's leftovers: kept as a path component
  }
}
