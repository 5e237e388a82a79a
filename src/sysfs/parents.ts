/**
 * Parent devices and their types in the tree: the parent's directory with
 * the vendor's identity files, its subsystem (class or bus) links, its own
 * IOMMU group, `uevent`, `power/`, and mdev_supported_types/<type>/ with
 * create, name, available_instances, device_api, description, devices/
 * (drivers/vfio/mdev/mdev_sysfs.c parent_create_sysfs_files and the type
 * attributes; the 4.10 layout in the legacy profile).
 *
 * A vendor's own attributes are created before the generic files of the same
 * directory, so a vendor file with a standard name (a parent's `uevent`, a
 * type's `name`) replaces the generic one; other duplicates are logged and
 * dropped.
 */
import type { MdevType, Parent } from '../core/api.js';
import { MdevError } from '../core/errno.js';
import type { CoreParent, MdevCoreApi } from '../core/model.js';
import { KDir, type KNode } from '../kernfs/index.js';
import type { PluginAttrs } from './attrs.js';
import type { MdevBus } from './bus.js';
import type { DeviceHome, DeviceRec, PresentedDevices } from './devices.js';
import { addPower } from './driver-core.js';
import type { IommuGroups } from './iommu-groups.js';
import type { PresentedPciDevices } from './pci-devices.js';
import { createStore } from './stores.js';
import type { SysfsTree } from './tree.js';
import type { UeventFiles } from './uevent-files.js';

interface TypeRec {
  type: MdevType;
  dir: KDir;
  devices: KDir;
}

export interface ParentRec extends DeviceHome {
  parent: CoreParent;
  dir: KDir;
  /** Nodes created inside `dir` on behalf of this parent. */
  owned: KNode[];
  /** Nodes created elsewhere (class/bus links, the parent's group dir...). */
  external: KNode[];
  types: Map<string, TypeRec>;
  devices: Set<DeviceRec>;
  /** The parent is a PCI function pci-devices.ts presents: its directory is not the parent's. */
  onPci: boolean;
}

export class PresentedParents {
  readonly #parents = new Map<string, ParentRec>();

  constructor(
    private readonly tree: SysfsTree,
    private readonly core: MdevCoreApi,
    private readonly bus: MdevBus,
    private readonly groups: IommuGroups,
    private readonly devices: PresentedDevices,
    private readonly attrs: PluginAttrs,
    private readonly uevents: UeventFiles,
    private readonly pci: PresentedPciDevices,
  ) {}

  get count(): number {
    return this.#parents.size;
  }

  get(name: string): ParentRec | undefined {
    return this.#parents.get(name);
  }

  /** One presented parent per registered parent, and no other. */
  sync(): void {
    const want = new Map<string, CoreParent>();
    for (const p of this.core.parents()) want.set(p.name, p);
    for (const [name, rec] of this.#parents) {
      if (want.get(name) !== rec.parent) this.#teardown(rec);
    }
    for (const [name, p] of want) {
      if (!this.#parents.has(name)) this.#build(p);
    }
  }

  #build(p: CoreParent): void {
    const pciDir = this.pci.dir(p.name);
    if (pciDir) {
      this.#buildMdev(p, { parent: p, dir: pciDir, owned: [], external: [], types: new Map(), devices: new Set(), onPci: true });
      return;
    }
    const spec = p.device;
    const parts = spec.path.split('/').filter(Boolean);
    const name = parts.pop();
    if (!name) throw new MdevError('EINVAL', `bad parent path '${spec.path}'`);
    const container = this.tree.ensureImplicit(this.tree.root, parts.join('/'));
    let dir: KDir;
    const existing = container.get(name);
    if (existing instanceof KDir && this.tree.isImplicit(existing)) {
      dir = existing; // a nested parent made it a path component first: take it over
      this.tree.claim(existing);
    } else {
      dir = container.mkdir(name);
    }
    // The emulated device is the whole device: a host one of that name does not show through an overlay.
    dir.opaque = true;
    const rec: ParentRec = { parent: p, dir, owned: [], external: [], types: new Map(), devices: new Set(), onPci: false };
    this.#parents.set(p.name, rec);
    const own = (n: KNode): void => {
      rec.owned.push(n);
    };
    const ext = (n: KNode): void => {
      rec.external.push(n);
    };

    // The vendor's identity files first, so they can override the generic ones.
    // A vendor's own `uevent` shows its variables, but a write to it is the
    // driver core's (uevent_store): it sends the event the write asks for.
    const subsystem = spec.subsystem ? ('class' in spec.subsystem ? spec.subsystem.class : spec.subsystem.bus) : undefined;
    for (const g of spec.attrs ?? []) {
      const vendorUevent = g.name ? undefined : g.attrs.find(a => a.name === 'uevent' && a.show);
      if (vendorUevent) own(this.uevents.add({ dir, subsystem }, () => this.attrs.show(vendorUevent, p as Parent, p.name)));
      this.attrs.addGroup(dir, vendorUevent ? { ...g, attrs: g.attrs.filter(a => a !== vendorUevent) } : g, p as Parent, own, p.name);
    }
    if (this.core.profile === 'legacy') {
      for (const g of p.ops.devAttrGroups ?? []) this.attrs.addGroup(dir, g, p as Parent, own, p.name);
    }

    // subsystem link and the class/bus view of the parent
    if (spec.subsystem) {
      if ('class' in spec.subsystem) {
        const cls = this.tree.ensureImplicit(this.tree.classDir, spec.subsystem.class);
        if (!dir.has('subsystem')) own(dir.symlink('subsystem', cls));
        if (!cls.has(name)) ext(cls.symlink(name, dir));
      } else {
        const bus = this.bus.ensureOtherBus(spec.subsystem.bus);
        if (!dir.has('subsystem')) own(dir.symlink('subsystem', bus));
        const devs = bus.get('devices') as KDir;
        if (!devs.has(name)) ext(devs.symlink(name, dir));
        if (spec.driver) {
          const drv = (bus.get('drivers') as KDir).ensureDir(spec.driver);
          drv.opaque = true;
          if (!dir.has('driver')) own(dir.symlink('driver', drv));
          if (!drv.has(name)) ext(drv.symlink(name, dir));
        }
      }
    }

    // The parent's own IOMMU group (a physical device's group).
    if (spec.iommuGroup !== undefined) {
      const g = this.groups.parentGroup(spec.iommuGroup, name, dir, ext);
      if (!dir.has('iommu_group')) own(dir.symlink('iommu_group', g));
    }

    if (!dir.has('uevent')) {
      own(this.uevents.add({ dir, subsystem }, () => (spec.driver ? `DRIVER=${spec.driver}\n` : '')));
    }
    if (!dir.has('power')) own(addPower(dir, this.core.profile));
    this.#buildMdev(p, rec);
  }

  /** What mdev_register_parent adds to the device: mdev_supported_types/ and the class/mdev_bus link. */
  #buildMdev(p: CoreParent, rec: ParentRec): void {
    const { dir } = rec;
    this.#parents.set(p.name, rec);
    // mdev_supported_types/<prefix>-<id>/
    const types = dir.mkdir('mdev_supported_types');
    rec.owned.push(types);
    for (const t of p.types) rec.types.set(t.id, this.#buildType(types, t));

    // /sys/class/mdev_bus/<name>
    const mdevBus = this.tree.classDir.ensureDir('mdev_bus');
    mdevBus.opaque = true; // the framework's own: the host's parents do not show through an overlay
    if (!mdevBus.has(p.name)) rec.external.push(mdevBus.symlink(p.name, dir));
  }

  #buildType(typesDir: KDir, t: MdevType): TypeRec {
    const dir = typesDir.mkdir(t.id);
    const spec = t.spec;
    dir.attr('create', 0o200, {
      store: async data => {
        await createStore(this.core, t, data);
      },
    });
    const std = {
      name: () => dir.attr('name', 0o444, { show: () => `${t.name}\n` }),
      device_api: () => dir.attr('device_api', 0o444, { show: () => `${t.deviceApi}\n` }),
      available_instances: () =>
        dir.attr('available_instances', 0o444, {
          show: () => `${this.core.availableInstances(t)}\n`,
        }),
      description: () =>
        dir.attr('description', 0o444, {
          show: async () => (await this.attrs.description(t)) ?? '',
        }),
    } as const;
    let wanted: Array<keyof typeof std>;
    if (this.core.profile === 'legacy') {
      wanted = spec.legacyAttrs
        ? [...spec.legacyAttrs]
        : [
            ...(spec.name !== undefined ? ['name' as const] : []),
            ...(spec.description !== undefined ? ['description' as const] : []),
            'device_api',
            'available_instances',
          ];
    } else {
      wanted = ['name', 'available_instances', 'device_api'];
      if (spec.description !== undefined) wanted.push('description');
    }
    for (const a of spec.attrs ?? []) this.attrs.add(dir, a, t, t.id);
    for (const w of wanted) if (!dir.has(w)) std[w]();
    const devices = dir.mkdir('devices');
    return { type: t, dir, devices };
  }

  #teardown(rec: ParentRec): void {
    for (const d of [...rec.devices]) this.devices.teardown(d);
    this.#parents.delete(rec.parent.name);
    for (const n of rec.external) this.tree.removePruning(n);
    for (const n of rec.owned) n.remove();
    if (rec.onPci) return; // the function's directory stays
    if (rec.dir.children.size === 0) {
      this.tree.removePruning(rec.dir);
    } else {
      // Something else (a nested parent) still lives below: keep it as a path component.
      this.tree.release(rec.dir);
    }
  }
}
