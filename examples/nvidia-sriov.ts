/**
 * The PCI side of an NVIDIA SR-IOV GPU, shared by nvidia-ampere.ts and
 * nvidia-vgpu17.ts: the PF bound to `nvidia` with its SR-IOV capability, and
 * each VF's identity (drivers/pci/iov.c pci_iov_add_virtfn: the PF's vendor,
 * the VF Device ID, the PF's subsystem ids and class; VF BAR i is the PF's
 * VF BAR region split evenly). The VFs bind to `nvidia` too (its probe makes
 * them vGPU hosts). Emulator-defined numbers are in nvidia-choices.ts.
 */
import type { PciDevice, PciDeviceSpec, VfSpec } from 'mdevfs';
import { FIRST_VF_OFFSET, VF_STRIDE, vfGroup } from './nvidia-choices.js';
import { PCI_RES_MEM32, PCI_RES_MEM64_PREF, pciFunction, pciFunctionFiles, pciUevent, type PciFunction } from './pci-parent.js';

const MB = 1n << 20n;

/** Where one GPU sits: a two-socket server, each GPU behind its own root port. */
export interface GpuSlot {
  bus: number;
  node: number;
  iommuGroup: number;
  /** VF i's IOMMU group is vfGroupBase + i. */
  vfGroupBase: number;
  mmio32: bigint;
  mmio64: bigint;
}

export const SLOTS: GpuSlot[] = [
  { bus: 0x41, node: 0, iommuGroup: 30, vfGroupBase: 200, mmio32: 0xb2000000n, mmio64: 0x38bf00000000n },
  { bus: 0x81, node: 1, iommuGroup: 64, vfGroupBase: 300, mmio32: 0xd2000000n, mmio64: 0x3cbf00000000n },
];
const NODE_CPUS = ['0-31,64-95', '32-63,96-127'];

export interface GpuModel {
  device: number;
  vfDevice: number;
  subsystemDevice: number;
  totalVfs: number;
  link: PciFunction['link'];
}

const hex2 = (n: number): string => n.toString(16).padStart(2, '0');

/** The PF's identity (its own BARs; the VF BARs follow as resources 7 and 9). */
export function pfFunction(slot: GpuSlot, gpu: GpuModel): PciFunction {
  return {
    address: `0000:${hex2(slot.bus)}:00.0`,
    under: `devices/pci0000:${hex2(slot.bus - 1)}/0000:${hex2(slot.bus - 1)}:01.1`,
    driver: 'nvidia',
    vendor: 0x10de,
    device: gpu.device,
    subsystemVendor: 0x10de,
    subsystemDevice: gpu.subsystemDevice,
    classCode: 0x030200, // 3D controller
    revision: 0xa1,
    link: gpu.link,
    numaNode: slot.node,
    irq: 0xff,
    localCpulist: NODE_CPUS[slot.node]!,
    iommuGroup: slot.iommuGroup,
    resources: [
      { index: 0, start: slot.mmio32, size: 16n * MB, flags: PCI_RES_MEM32 },
      { index: 1, start: slot.mmio64, size: 32768n * MB, flags: PCI_RES_MEM64_PREF },
      { index: 3, start: slot.mmio64 + 32768n * MB, size: 32n * MB, flags: PCI_RES_MEM64_PREF },
      // The VF BARs (PCI_IOV_RESOURCES): totalVfs × (32 MB registers, 256 MB aperture).
      { index: 7, start: slot.mmio32 + 16n * MB, size: BigInt(gpu.totalVfs) * 32n * MB, flags: PCI_RES_MEM64_PREF },
      { index: 9, start: slot.mmio64 + 36864n * MB, size: BigInt(gpu.totalVfs) * 256n * MB, flags: PCI_RES_MEM64_PREF },
    ],
  };
}

/** VF `index`'s identity: BAR 0 and 1 are its share of the PF's VF BARs. */
export function vfFunction(slot: GpuSlot, gpu: GpuModel, index: number, address: string): PciFunction {
  const pf = pfFunction(slot, gpu);
  const vfBar = (i: number): bigint => pf.resources.find(r => r.index === i)!.start;
  return {
    ...pf,
    address,
    device: gpu.vfDevice,
    irq: 0, // VFs have no INTx
    iommuGroup: vfGroup(slot.vfGroupBase, index),
    resources: [
      { index: 0, start: vfBar(7) + BigInt(index) * 32n * MB, size: 32n * MB, flags: PCI_RES_MEM64_PREF },
      { index: 2, start: vfBar(9) + BigInt(index) * 256n * MB, size: 256n * MB, flags: PCI_RES_MEM64_PREF },
    ],
  };
}

/** How the vendor's driver treats the PF and each VF. */
export interface SriovDriver {
  /** sriov_configure: throw to refuse. */
  configure(pf: PciDevice, numVfs: number): void;
  /** The VF's `nvidia` driver: probe, remove and its own files. */
  vf: Pick<VfSpec, 'probe' | 'remove' | 'driverAttrs'>;
}

/** The PF, with `numVfs` VFs enabled from the start (nvidia-sriov.service ran sriov-manage -e ALL at boot). */
export function sriovGpu(slot: GpuSlot, gpu: GpuModel, drv: SriovDriver, numVfs: number): PciDeviceSpec {
  return pciFunction(pfFunction(slot, gpu), {
    totalVfs: gpu.totalVfs,
    offset: FIRST_VF_OFFSET,
    stride: VF_STRIDE,
    vfDevice: gpu.vfDevice,
    numVfs,
    configure: (pf, n) => drv.configure(pf, n),
    vf: (_pf, index, address) => {
      const f = vfFunction(slot, gpu, index, address);
      const files = pciFunctionFiles<PciDevice>(f);
      // A VF's DRIVER line is there only while it is bound (sriov_drivers_autoprobe 0 leaves it unbound).
      const attrs = files.attrs.map(a =>
        a.name === 'uevent' ? { ...a, show: (vf: PciDevice) => pciUevent({ ...f, driver: vf.driver ?? '' }) } : a,
      );
      return { driver: 'nvidia', iommuGroup: f.iommuGroup, attrs: [{ ...files, attrs }], ...drv.vf };
    },
  });
}
