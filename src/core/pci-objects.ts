/**
 * The record of a PCI function (struct pci_dev with its struct pci_sriov):
 * what pci-devices.ts changes and the presenters read.
 */
import type { AttributeGroup, PciDevice, PciDeviceSpec, SriovSpec, VfSpec } from './api.js';
import { Mutex } from './list-lock.js';
import type { CorePciDevice } from './model.js';
import { normalisePath, type Owner } from './objects.js';

export class PciDeviceImpl implements CorePciDevice {
  readonly name: string;
  readonly device: Readonly<PciDeviceSpec>;
  readonly devpath: string;
  readonly vfs = new Map<number, PciDeviceImpl>();
  numVfs = 0;
  driver: string | undefined = undefined;
  /** A VF's `physfn` and its PF's `virtfn<i>` exist (pci_iov_sysfs_link). */
  linked = false;
  state: 'live' | 'gone' = 'live';
  /** sriov_drivers_autoprobe of a PF. */
  autoprobe = true;
  drvdata: unknown = undefined;
  /** device_lock: one sriov_numvfs change at a time. */
  readonly lock = new Mutex();

  constructor(
    device: PciDeviceSpec,
    readonly physfn: PciDeviceImpl | undefined,
    readonly vfIndex: number | undefined,
    readonly vfSpec: VfSpec | undefined,
    readonly owner: Owner | undefined,
  ) {
    const path = normalisePath(device.path);
    this.device = Object.freeze({ ...device, path });
    this.devpath = `/${path}`;
    this.name = path.slice(path.lastIndexOf('/') + 1);
  }

  get virtfns(): readonly PciDevice[] {
    return [...this.vfs.keys()].sort((a, b) => a - b).map(i => this.vfs.get(i)!);
  }

  get driverAttrs(): readonly AttributeGroup<PciDevice>[] {
    return this.vfSpec?.driverAttrs ?? [];
  }

  get sriov(): SriovSpec | undefined {
    return this.device.sriov;
  }

  toJSON(): object {
    return { name: this.name, path: this.device.path, numVfs: this.numVfs, driver: this.driver };
  }
}
