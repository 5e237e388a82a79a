/**
 * A PCI function as an mdev parent, with the identity files that tools read
 * from /sys/bus/pci/devices/<address>/ before they look at mdev at all
 * (NVIDIA go-nvlib's nvpci reads vendor, class, device, driver, iommu_group,
 * numa_node and resource; KubeVirt reads numa_node; Incus reads class, vendor,
 * device and uevent). Formats follow drivers/pci/pci-sysfs.c and pci-driver.c.
 * The binary `config` file is the function's configuration space, built by
 * mdevfs's pciConfigSpace from the same identity: libvirt's node-device
 * driver walks its capability list to the PCI Express link.
 */
import {
  pciConfigAttribute,
  pciConfigSpace,
  type Attribute,
  type AttributeGroup,
  type Parent,
  type ParentDeviceSpec,
  type PciConfigSpec,
  type PciDeviceSpec,
  type PcieLink,
} from 'mdevfs';

/** One BAR (or ROM) as pci_dev->resource[] holds it. */
export interface PciResource {
  /** 0-5 BARs, 6 the expansion ROM, 7-12 the SR-IOV VF BARs. */
  index: number;
  start: bigint;
  size: bigint;
  /** res->flags: IORESOURCE_* bits plus the BAR's low bits. Use the PCI_RES_* presets. */
  flags: number;
}

// IORESOURCE_MEM 0x200 | IORESOURCE_SIZEALIGN 0x40000 (+ PREFETCH 0x2000, MEM_64 0x100000)
// plus the BAR's own type bits (0x4 = 64-bit, 0x8 = prefetchable).
export const PCI_RES_MEM32 = 0x00040200;
export const PCI_RES_MEM64 = 0x00140204;
export const PCI_RES_MEM64_PREF = 0x0014220c;
/** IORESOURCE_IO 0x100 | SIZEALIGN | the I/O-space bit. */
export const PCI_RES_IO = 0x00040101;
/** IORESOURCE_MEM | PREFETCH | READONLY | SIZEALIGN. */
export const PCI_RES_ROM = 0x00046200;

/** A PCI function: its identity (as its config space holds it) and where it sits. */
export interface PciFunction extends Pick<
  PciConfigSpec,
  'vendor' | 'device' | 'subsystemVendor' | 'subsystemDevice' | 'classCode' | 'revision'
> {
  /** Domain:bus:device.function, e.g. '0000:3b:00.0'. */
  address: string;
  /** The directory that holds the function below /sys: 'devices/pci0000:3a/0000:3a:00.0' (behind a root port). */
  under: string;
  /** The bound PCI driver ('nvidia', 'i915'); also the mdev type prefix. '' for an unbound function (no DRIVER line). */
  driver: string;
  /** -1 on single-node hosts. */
  numaNode: number;
  irq: number;
  /** CPUs local to the function, as cpulist ('0-15,32-47'). */
  localCpulist: string;
  iommuGroup: number;
  resources: PciResource[];
  /** The PCIe link (config space LNKCAP/LNKSTA); absent for an integrated device (no link). */
  link?: PcieLink & { status?: PcieLink };
}

/** PCI_NUM_RESOURCES for a non-bridge with CONFIG_PCI_IOV: 6 BARs, ROM, 6 VF BARs. */
const RESOURCE_LINES = 13;

const hex = (n: number, width: number): string => n.toString(16).padStart(width, '0');
const HEX = (n: number, width: number): string => hex(n, width).toUpperCase();

/** The `resource` file: "0x%016llx 0x%016llx 0x%016llx\n" (start, end, flags) per resource. */
export function resourceFile(resources: readonly PciResource[]): string {
  const x64 = (v: bigint): string => `0x${v.toString(16).padStart(16, '0')}`;
  let out = '';
  for (let i = 0; i < RESOURCE_LINES; i++) {
    const r = resources.find(res => res.index === i);
    out += r ? `${x64(r.start)} ${x64(r.start + r.size - 1n)} ${x64(BigInt(r.flags))}\n` : `${x64(0n)} ${x64(0n)} ${x64(0n)}\n`;
  }
  return out;
}

/** The `uevent` file: DRIVER from the driver core, then pci_uevent's variables. */
export function pciUevent(f: PciFunction): string {
  const cls = f.classCode;
  return [
    ...(f.driver ? [`DRIVER=${f.driver}`] : []),
    `PCI_CLASS=${HEX(cls, 4)}`,
    `PCI_ID=${HEX(f.vendor, 4)}:${HEX(f.device, 4)}`,
    `PCI_SUBSYS_ID=${HEX(f.subsystemVendor, 4)}:${HEX(f.subsystemDevice, 4)}`,
    `PCI_SLOT_NAME=${f.address}`,
    `MODALIAS=pci:v${HEX(f.vendor, 8)}d${HEX(f.device, 8)}sv${HEX(f.subsystemVendor, 8)}` +
      `sd${HEX(f.subsystemDevice, 8)}bc${HEX(cls >> 16, 2)}sc${HEX((cls >> 8) & 0xff, 2)}i${HEX(cls & 0xff, 2)}`,
  ]
    .map(line => `${line}\n`)
    .join('');
}

/** The identity files of a PCI function (pci-sysfs.c pci_dev_attrs, resource, config, uevent). */
export function pciFunctionFiles<C>(f: PciFunction): AttributeGroup<C> {
  const ro = (name: string, value: string): Attribute<C> => ({ name, show: () => value });
  const attrs: Attribute<C>[] = [
    ro('vendor', `0x${hex(f.vendor, 4)}\n`),
    ro('device', `0x${hex(f.device, 4)}\n`),
    ro('subsystem_vendor', `0x${hex(f.subsystemVendor, 4)}\n`),
    ro('subsystem_device', `0x${hex(f.subsystemDevice, 4)}\n`),
    ro('class', `0x${hex(f.classCode, 6)}\n`),
    ro('revision', `0x${hex(f.revision, 2)}\n`),
    ro('numa_node', `${f.numaNode}\n`),
    ro('irq', `${f.irq}\n`),
    ro('local_cpulist', `${f.localCpulist}\n`),
    ro('resource', resourceFile(f.resources)),
    // Its variables; a write to it is mdevfs's (the driver core's uevent_store).
    { name: 'uevent', mode: 0o644, show: () => pciUevent(f) },
  ];
  return { attrs, binAttrs: [pciConfigAttribute<C>(pciConfigSpace({ ...f, bars: f.resources }))] };
}

/** The parent spec for a PCI function bound to `f.driver`, with its identity files. */
export function pciParent(f: PciFunction): ParentDeviceSpec {
  return {
    path: `${f.under}/${f.address}`,
    typePrefix: f.driver,
    subsystem: { bus: 'pci' },
    driver: f.driver,
    iommuGroup: f.iommuGroup,
    attrs: [pciFunctionFiles<Parent>(f)],
  };
}

/**
 * A PCI function that is no mdev parent itself (an SR-IOV PF), for
 * MdevHost.addPciDevice; the SR-IOV files come from `sriov`.
 */
export function pciFunction(f: PciFunction, sriov?: PciDeviceSpec['sriov']): PciDeviceSpec {
  return { path: `${f.under}/${f.address}`, driver: f.driver, iommuGroup: f.iommuGroup, attrs: [pciFunctionFiles(f)], sriov };
}
