/**
 * Mediated devices in the tree: <parent>/<uuid> with what device_add gives
 * it (uevent, power/, subsystem, bus/mdev/devices/<uuid>), `remove`, the type
 * links (mdev_create_sysfs_files), the driver and IOMMU group links, the
 * vendor's attributes and the VFIO objects.
 *
 * `sync` reconciles one device with the core's state; the core announces a
 * device only at its kernel steps, so a create passes here four times and a
 * remove four times (core/model.ts DeviceStep), which `passes` counts.
 */
import { MdevError } from '../core/errno.js';
import type { CoreDevice, MdevCoreApi } from '../core/model.js';
import type { KDir, KLink, KNode } from '../kernfs/index.js';
import type { PluginAttrs } from './attrs.js';
import type { BoundRec, MdevBus } from './bus.js';
import { addPower } from './driver-core.js';
import type { GroupedRec, IommuGroups } from './iommu-groups.js';
import { removeStore } from './stores.js';
import type { UeventFiles } from './uevent-files.js';
import type { VfioObjects, VfioRec } from './vfio-objects.js';

/** What a device needs of its presented parent (parents.ts ParentRec). */
export interface DeviceHome {
  readonly dir: KDir;
  /** mdev_supported_types/<type>/ and its devices/, by type id. */
  readonly types: ReadonlyMap<string, { readonly dir: KDir; readonly devices: KDir }>;
  /** Its presented devices, so that tearing it down does not walk every device. */
  readonly devices: Set<DeviceRec>;
}

export interface DeviceRec extends BoundRec, GroupedRec, VfioRec {
  uuid: string;
  parent: DeviceHome;
  dir: KDir;
  busLink: KLink;
  /** What device_add() made besides the bus link: uevent, power/, subsystem (device_del takes them before the wait). */
  added: KNode[];
  remove?: KNode;
  typeLink?: KLink;
  typeBackLink?: KLink;
  vendor?: KNode[];
}

export class PresentedDevices {
  readonly #devices = new Map<string, DeviceRec>();
  /** How many times a device has been reconciled, over all devices. */
  passes = 0;

  constructor(
    private readonly core: MdevCoreApi,
    private readonly bus: MdevBus,
    private readonly groups: IommuGroups,
    private readonly vfio: VfioObjects,
    private readonly attrs: PluginAttrs,
    private readonly uevents: UeventFiles,
  ) {}

  uuids(): IterableIterator<string> {
    return this.#devices.keys();
  }

  /** The device is gone: tear down whatever is left of it. */
  gone(uuid: string): void {
    this.passes++;
    const rec = this.#devices.get(uuid);
    if (rec) this.teardown(rec);
  }

  /** Reconcile `dev`'s nodes, under its presented parent, with its state. */
  sync(dev: CoreDevice, parent: DeviceHome): void {
    this.passes++;
    const uuid = dev.uuid;
    let rec = this.#devices.get(uuid);
    if (rec && (rec.dir.dead || rec.parent !== parent)) {
      this.teardown(rec);
      rec = undefined;
    }
    rec ??= this.#add(dev, parent);
    const dir = rec.dir;

    // remove (0200) iff hasRemoveFile
    if (dev.hasRemoveFile && (!rec.remove || rec.remove.dead)) {
      rec.remove = dir.attr('remove', 0o200, {
        store: async data => {
          const d = this.core.device(uuid);
          if (!d || d.state === 'gone') throw new MdevError('ENODEV');
          await removeStore(this.core, d, data);
        },
      });
    } else if (!dev.hasRemoveFile && rec.remove) {
      rec.remove.remove();
      rec.remove = undefined;
    }

    // mdev_type + mdev_supported_types/<type>/devices/<uuid> iff typeLinked
    const type = parent.types.get(dev.type.id);
    if (dev.typeLinked && type) {
      if (!rec.typeLink || rec.typeLink.dead || rec.typeLink.target !== type.dir) {
        this.#dropTypeLinks(rec);
        rec.typeLink = dir.symlink('mdev_type', type.dir);
        rec.typeBackLink = type.devices.symlink(uuid, dir);
      }
    } else {
      this.#dropTypeLinks(rec);
    }

    // driver_sysfs_remove() comes before the driver's remove waits (model.ts `releasing`).
    this.bus.link(rec, dev.releasing ? undefined : dev.boundDriver);
    // A remove releasing the driver is inside device_del(), which took
    // uevent, power/, subsystem and the bus link (bus_remove_device) first.
    if (dev.state === 'removing' && dev.releasing) {
      for (const n of rec.added) n.remove();
      rec.busLink.remove();
    }
    this.groups.link(rec, dev.iommuGroup);

    // Vendor attributes (mdev_attr_groups / driver dev_groups): modern once
    // probed (added by really_probe after the probe, removed by device_remove
    // before the driver's remove); legacy once the vendor's create() succeeded.
    const wantVendor = this.core.profile === 'legacy' ? dev.state === 'active' : dev.probed && !dev.releasing;
    if (wantVendor && !rec.vendor) {
      const nodes: KNode[] = [];
      for (const g of dev.parent.ops.mdevAttrGroups ?? []) this.attrs.addGroup(dir, g, dev, n => nodes.push(n), uuid);
      rec.vendor = nodes;
    } else if (!wantVendor && rec.vendor) {
      for (const n of rec.vendor) n.remove();
      rec.vendor = undefined;
    }

    this.vfio.sync(rec, dev);
  }

  /** device_add(): the dir, uevent, power/, subsystem, /sys/bus/mdev/devices/<uuid>. */
  #add(dev: CoreDevice, parent: DeviceHome): DeviceRec {
    const uuid = dev.uuid;
    const dir = parent.dir.mkdir(uuid);
    const uevent = this.uevents.add({ dir, subsystem: 'mdev' }, () => {
      const d = this.core.device(uuid);
      return d?.boundDriver ? `DRIVER=${d.boundDriver}\n` : '';
    });
    const added = [uevent, addPower(dir, this.core.profile), dir.symlink('subsystem', this.bus.dir)];
    const rec: DeviceRec = { uuid, parent, dir, busLink: this.bus.devices.symlink(uuid, dir), added };
    this.#devices.set(uuid, rec);
    parent.devices.add(rec);
    return rec;
  }

  #dropTypeLinks(rec: DeviceRec): void {
    rec.typeLink?.remove();
    rec.typeBackLink?.remove();
    rec.typeLink = rec.typeBackLink = undefined;
  }

  /** device_del(): everything of the device goes. */
  teardown(rec: DeviceRec): void {
    this.vfio.drop(rec);
    this.#dropTypeLinks(rec);
    this.bus.unlink(rec);
    this.groups.unlink(rec);
    rec.busLink.remove();
    rec.dir.remove();
    rec.parent.devices.delete(rec);
    if (this.#devices.get(rec.uuid) === rec) this.#devices.delete(rec.uuid);
  }

  /** Tear down the devices the core no longer has. */
  pruneExcept(live: ReadonlySet<string>): void {
    for (const [uuid, rec] of this.#devices) if (!live.has(uuid)) this.teardown(rec);
  }
}
