/**
 * The sysfs presentation of the mdev core: a kernfs tree shaped like /sys
 * (bus/ class/ devices/ kernel/) kept equal to the core's state. Each region
 * of /sys is a file of its own: bus.ts (bus/mdev and its drivers),
 * parents.ts (parents and their types), devices.ts (mediated devices),
 * vfio-objects.ts, iommu-groups.ts, driver-core.ts (uevent, power/),
 * pci-devices.ts (PCI functions with SR-IOV), and stores.ts (the
 * create/remove writes).
 *
 * On every `change` event the presenter reconciles the object it names with
 * the core's state; it never interprets "what changed", so replaying,
 * skipping or coalescing events cannot leave the tree wrong. Events are
 * handled synchronously, so a device's files exist by the time the core's
 * `create()` resolves.
 *
 * Profiles (docs/abi.md): 'modern' (today's kernel) and 'legacy' (4.10:
 * type dirs with only `create`, `devices/` and the vendor's standard
 * attributes, the parent's dev_attr_groups, a group dir holding only devices/).
 */
import { MdevError, errorMessage } from '../core/errno.js';
import { CoreView } from '../core/core-view.js';
import type { CoreChange, CoreDevice, MdevCoreApi } from '../core/model.js';
import type { KernfsRoot } from '../kernfs/index.js';
import { PluginAttrs } from './attrs.js';
import { MdevBus } from './bus.js';
import { PresentedDevices } from './devices.js';
import { IommuGroups } from './iommu-groups.js';
import { PresentedParents } from './parents.js';
import { PresentedPciDevices } from './pci-devices.js';
import { SysfsTree } from './tree.js';
import { UeventFiles } from './uevent-files.js';
import { VfioObjects } from './vfio-objects.js';

export interface PresenterOptions {
  /** Diagnostics (reconcile failures, unsupported writes). */
  log?: (message: string) => void;
}

export class SysfsPresenter extends CoreView {
  readonly #tree = new SysfsTree();
  readonly #log: (m: string) => void;
  readonly #bus: MdevBus;
  readonly #groups: IommuGroups;
  readonly #devices: PresentedDevices;
  readonly #parents: PresentedParents;
  readonly #pci: PresentedPciDevices;

  /** Plugin show/store calls are bounded by the core's callTimeoutMs (ETIMEDOUT past it). */
  constructor(core: MdevCoreApi, opts: PresenterOptions = {}) {
    super(core);
    const log = (this.#log = opts.log ?? (() => {}));
    const tree = this.#tree;
    const attrs = new PluginAttrs(core.callTimeoutMs, log, core.faults);
    const uevents = new UeventFiles(core);
    this.#bus = new MdevBus(tree, core, uevents);
    this.#groups = new IommuGroups(tree, core);
    this.#devices = new PresentedDevices(core, this.#bus, this.#groups, new VfioObjects(tree, uevents, core.profile), attrs, uevents);
    this.#pci = new PresentedPciDevices(tree, core, this.#bus, this.#groups, attrs, uevents);
    this.#parents = new PresentedParents(tree, core, this.#bus, this.#groups, this.#devices, attrs, uevents, this.#pci);
  }

  get root(): KernfsRoot {
    return this.#tree.root;
  }

  get profile(): MdevCoreApi['profile'] {
    return this.core.profile;
  }

  /** Presented parents (for the CLI and tests). */
  get parentCount(): number {
    return this.#parents.count;
  }

  /** How many times devices have been reconciled in all (a create costs three, a remove three). */
  get devicePasses(): number {
    return this.#devices.passes;
  }

  /** Reconcile everything with the core (also the answer to any inconsistency). */
  syncAll(): void {
    this.#guard('drivers', () => this.#bus.syncDrivers());
    this.#guard('pci', () => this.#pci.syncAll());
    this.#guard('parents', () => this.#parents.sync());
    const seen = new Set<string>();
    for (const d of this.core.devices()) {
      seen.add(d.uuid);
      this.#guard(d.uuid, () => this.#syncDevice(d));
    }
    this.#devices.pruneExcept(seen);
    this.#guard('groups', () => this.#groups.syncAll());
  }

  protected handle(c: CoreChange): void {
    switch (c.kind) {
      case 'driver-added':
      case 'driver-removed':
        this.#guard(c.kind, () => this.#bus.syncDrivers());
        break;
      case 'parent-added':
      case 'parent-removed':
        this.#guard(c.kind, () => this.#parents.sync());
        break;
      case 'pci':
        this.#guard(c.device.name, () => this.#pci.sync(c.device));
        break;
      case 'device':
        this.#guard(c.device.uuid, () => this.#syncDevice(c.device));
        break;
      case 'group-removed':
        this.#guard(c.kind, () => this.#groups.sync(c.group));
        break;
    }
  }

  #syncDevice(dev: CoreDevice): void {
    if (dev.state === 'gone') {
      this.#devices.gone(dev.uuid);
      return;
    }
    let parent = this.#parents.get(dev.parent.name);
    if (!parent) {
      this.#parents.sync();
      parent = this.#parents.get(dev.parent.name);
      if (!parent) throw new MdevError('ENODEV', `device ${dev.uuid}: parent ${dev.parent.name} is not presented`);
    }
    this.#devices.sync(dev, parent);
  }

  #guard(what: string, fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.#log(`sysfs: reconciling ${what} failed: ${errorMessage(e)}`);
    }
  }
}
