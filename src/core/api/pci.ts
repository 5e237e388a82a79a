/**
 * PCI functions that exist whether or not they are mdev parents: an SR-IOV
 * physical function (PF) and the virtual functions (VFs) the PCI core adds
 * when `sriov_numvfs` is written (drivers/pci/iov.c). A plugin adds the PF
 * with MdevHost.addPciDevice; the core creates and removes its VFs by the
 * kernel's rules and calls the VF driver's probe and remove, where a vendor
 * may register the VF as an mdev parent (NVIDIA Ampere) or give it files of
 * its own (NVIDIA vGPU 17's `nvidia/current_vgpu_type`).
 *
 * What the tree shows for them is in docs/abi.md ("SR-IOV").
 */
import type { AttributeGroup, Awaitable } from './basics.js';

/** A PCI function's files and place (a PF's; a VF's comes from SriovSpec.vf). */
export interface PciDeviceSpec {
  /**
   * Path below /sys, e.g. 'devices/pci0000:40/0000:40:01.1/0000:41:00.0'.
   * Its basename is the PCI address (domain:bus:device.function), which is
   * also /sys/bus/pci/devices/<address>.
   */
  path: string;
  /** The bound PCI driver ('nvidia' → driver -> ../../../bus/pci/drivers/nvidia). */
  driver?: string;
  /** The function's own IOMMU group. */
  iommuGroup?: number;
  /**
   * The identity files (vendor, device, class, config, resource, uevent...),
   * as ParentDeviceSpec.attrs. A `uevent` attribute's show gives the file and
   * the variables of the device's uevents (pci_uevent's PCI_*, MODALIAS).
   */
  attrs?: AttributeGroup<PciDevice>[];
  /** Present for a function with an SR-IOV capability (a PF). */
  sriov?: SriovSpec;
}

/** A VF's own part; its path, address and physfn come from its PF. */
export interface VfSpec {
  /** The driver that binds it when the PF's sriov_drivers_autoprobe is 1 (none: it stays unbound). */
  driver?: string;
  /** Its IOMMU group: every VF has its own (the PCI core asks the IOMMU for one per function). */
  iommuGroup?: number;
  attrs?: AttributeGroup<PciDevice>[];
  /**
   * Files the VF's driver adds while it is bound (its dev_groups, which
   * really_probe adds), e.g. NVIDIA vGPU 17's `nvidia/` group.
   */
  driverAttrs?: AttributeGroup<PciDevice>[];
  /**
   * The VF driver's probe (really_probe, after the `driver` link): set up
   * the VF, e.g. registerDevice it as an mdev parent. A throw leaves it
   * unbound (no bind uevent), as a failed probe does.
   */
  probe?(vf: PciDevice): Awaitable<void>;
  /** The VF driver's remove (on unbind, before the VF goes): undo probe. A throw is only logged. */
  remove?(vf: PciDevice): Awaitable<void>;
}

/** The PF's SR-IOV capability (struct pci_sriov) and its driver's sriov_configure. */
export interface SriovSpec {
  /** TotalVFs (sriov_totalvfs), 1 to 65535. */
  totalVfs: number;
  /** First VF Offset and VF Stride, in routing ids: VF i is at RID(PF) + offset + i * stride. */
  offset: number;
  stride: number;
  /** VF Device ID (sriov_vf_device, also each VF's `device`). */
  vfDevice: number;
  /** VFs enabled when the PF is added (as if enabled at boot; no uevents). Default 0. */
  numVfs?: number;
  /** The VF's files and driver; called once each time VF `index` is added. */
  vf(pf: PciDevice, index: number, address: string): Awaitable<VfSpec>;
  /**
   * The PF driver's sriov_configure, called before the core enables
   * `numVfs` VFs (from 0) or disables them all (`numVfs` 0). A throw refuses
   * the write with that errno and changes nothing. Without it, writes that
   * would change sriov_numvfs fail with ENOENT, as for a driver without
   * sriov_configure.
   */
  configure?(pf: PciDevice, numVfs: number): Awaitable<void>;
}

/** A PCI function the core holds (struct pci_dev). */
export interface PciDevice<D = unknown> {
  /** The PCI address: the basename of the path. */
  readonly name: string;
  readonly device: Readonly<PciDeviceSpec>;
  /** A VF's PF (the `physfn` link); undefined for a PF. */
  readonly physfn: PciDevice | undefined;
  /** A VF's index below its PF (`virtfn<index>`). */
  readonly vfIndex: number | undefined;
  /** A PF's VFs now, by index. */
  readonly virtfns: readonly PciDevice[];
  /** sriov_numvfs. */
  readonly numVfs: number;
  /** The driver bound now (a VF's only after its probe started), else undefined. */
  readonly driver: string | undefined;
  /** Free slot for the plugin (pci_get_drvdata). */
  drvdata: D | undefined;
}

/** The routing id (bus << 8 | device << 3 | function) of 'dddd:bb:dd.f'; undefined if malformed. */
export function pciRoutingId(address: string): { domain: string; rid: number } | undefined {
  const m = /^([0-9a-f]{4,8}):([0-9a-f]{2}):([0-1][0-9a-f])\.([0-7])$/.exec(address);
  if (!m) return undefined;
  const dev = parseInt(m[3]!, 16);
  if (dev > 0x1f) return undefined;
  return { domain: m[1]!, rid: (parseInt(m[2]!, 16) << 8) | (dev << 3) | parseInt(m[4]!, 10) };
}

/** pci_iov_virtfn_bus/devfn: the address of VF `index` of the PF at `pfAddress`. */
export function vfAddress(pfAddress: string, offset: number, stride: number, index: number): string {
  const pf = pciRoutingId(pfAddress);
  if (!pf) throw new RangeError(`bad PCI address ${pfAddress}`);
  const rid = pf.rid + offset + stride * index;
  if (rid > 0xffff) throw new RangeError(`VF ${index} of ${pfAddress} is past bus ff`);
  const hex = (n: number, w: number): string => n.toString(16).padStart(w, '0');
  return `${pf.domain}:${hex(rid >> 8, 2)}:${hex((rid >> 3) & 0x1f, 2)}.${rid & 7}`;
}
