/**
 * A PCI function's configuration space, for the `config` binary attribute of
 * a PCI parent (/sys/bus/pci/devices/<address>/config, drivers/pci/pci-sysfs.c
 * pci_read_config). Offsets and bits are include/uapi/linux/pci_regs.h's.
 *
 * `pciConfigSpace` builds the 256 bytes of a type 0 header from the identity
 * the other PCI files show (vendor, device, class, subsystem, revision), with
 * a capability list Power Management (0x60) → MSI (0x68) → PCI Express v2
 * (0x78), the layout of an NVIDIA T4. libvirt's node-device driver
 * (udevProcessPCI, virpci.c) reads the header type, walks that list to the
 * PCI Express capability and reports its link capability and status, e.g.
 * `<pci-express><link validity='cap' speed='8' width='16'/>...`.
 */
import type { BinaryAttribute } from './basics.js';

/** A PCIe link speed in GT/s (LNKCAP's Supported Link Speeds 1-6: 2.5 to 64 GT/s). */
export type PcieLinkSpeed = 2.5 | 5 | 8 | 16 | 32 | 64;
export const PCIE_LINK_SPEEDS: readonly PcieLinkSpeed[] = [2.5, 5, 8, 16, 32, 64];
/** Link widths a link capability may give (x1 … x32). */
export const PCIE_LINK_WIDTHS: readonly number[] = [1, 2, 4, 8, 12, 16, 32];

export interface PcieLink {
  speed: PcieLinkSpeed;
  width: number;
}

export interface PciConfigSpec {
  vendor: number;
  device: number;
  subsystemVendor: number;
  subsystemDevice: number;
  /** 24-bit class code (0x030200: 3D controller). */
  classCode: number;
  revision: number;
  /**
   * The PCIe link: an Endpoint whose link capability (LNKCAP) is this and
   * whose link status (LNKSTA) is `status`, by default the same. Absent: a
   * Root Complex Integrated Endpoint (an integrated GPU), which has no link.
   */
  link?: PcieLink & { status?: PcieLink };
  /** Interrupt Line (the `irq` file's value, low 8 bits). Default 0. */
  irq?: number;
  /** BARs 0-5 as pci_dev->resource[] holds them (start, and flags whose low 4 bits are the BAR's type bits). */
  bars?: ReadonlyArray<{ index: number; start: bigint; flags: number }>;
}

/** The size of a conventional configuration space (pci_dev->cfg_size without extended space). */
export const PCI_CONFIG_SIZE = 256;

// include/uapi/linux/pci_regs.h
const PCI_COMMAND = 0x04;
const PCI_COMMAND_MEMORY = 0x2;
const PCI_COMMAND_MASTER = 0x4;
const PCI_STATUS = 0x06;
const PCI_STATUS_CAP_LIST = 0x10;
const PCI_BASE_ADDRESS_0 = 0x10;
const PCI_SUBSYSTEM_VENDOR_ID = 0x2c;
const PCI_CAPABILITY_LIST = 0x34;
const PCI_INTERRUPT_LINE = 0x3c;
const PCI_CAP_ID_PM = 0x01;
const PCI_CAP_ID_MSI = 0x05;
const PCI_CAP_ID_EXP = 0x10;
const PCI_MSI_FLAGS_64BIT = 0x0080;
const PCI_EXP_TYPE_ENDPOINT = 0x0;
const PCI_EXP_TYPE_RC_END = 0x9;
const PCI_EXP_DEVCAP = 0x04;
const PCI_EXP_LNKCAP = 0x0c;
const PCI_EXP_LNKSTA = 0x12;
const PCI_EXP_LNKCAP2 = 0x2c;
const PCI_EXP_LNKCTL2 = 0x30;

const PM = 0x60;
const MSI = 0x68;
const EXP = 0x78;

function linkCode(l: PcieLink, what: string): number {
  const gen = PCIE_LINK_SPEEDS.indexOf(l.speed) + 1;
  if (gen === 0) throw new RangeError(`${what}: link speed ${l.speed} GT/s is not one of ${PCIE_LINK_SPEEDS.join(', ')}`);
  if (!PCIE_LINK_WIDTHS.includes(l.width))
    throw new RangeError(`${what}: link width x${l.width} is not one of ${PCIE_LINK_WIDTHS.join(', ')}`);
  return gen | (l.width << 4);
}

/** The 256-byte configuration space of a PCI(e) function with this identity. */
export function pciConfigSpace(spec: PciConfigSpec): Uint8Array {
  const bytes = new Uint8Array(PCI_CONFIG_SIZE);
  const v = new DataView(bytes.buffer);
  const w16 = (off: number, x: number): void => v.setUint16(off, x & 0xffff, true);
  const w32 = (off: number, x: number): void => v.setUint32(off, x >>> 0, true);
  w16(0x00, spec.vendor);
  w16(0x02, spec.device);
  w16(PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
  w16(PCI_STATUS, PCI_STATUS_CAP_LIST);
  bytes[0x08] = spec.revision & 0xff;
  bytes[0x09] = spec.classCode & 0xff; // programming interface
  w16(0x0a, spec.classCode >> 8); // sub-class, base class
  bytes[0x0e] = 0; // PCI_HEADER_TYPE_NORMAL, single function
  for (const b of spec.bars ?? []) {
    if (!(b.index >= 0 && b.index <= 5)) continue;
    const off = PCI_BASE_ADDRESS_0 + 4 * b.index;
    const io = (b.flags & 0x1) !== 0;
    w32(off, Number(b.start & (io ? 0xfffffffcn : 0xfffffff0n)) | (b.flags & (io ? 0x3 : 0xf)));
    if (!io && b.flags & 0x4 && b.index < 5) w32(off + 4, Number((b.start >> 32n) & 0xffffffffn));
  }
  w16(PCI_SUBSYSTEM_VENDOR_ID, spec.subsystemVendor);
  w16(PCI_SUBSYSTEM_VENDOR_ID + 2, spec.subsystemDevice);
  bytes[PCI_CAPABILITY_LIST] = PM;
  bytes[PCI_INTERRUPT_LINE] = (spec.irq ?? 0) & 0xff;
  bytes[PCI_INTERRUPT_LINE + 1] = 1; // INTA#

  // Power Management, version 3 (PMC), D0.
  bytes[PM] = PCI_CAP_ID_PM;
  bytes[PM + 1] = MSI;
  w16(PM + 2, 0x0003);
  // MSI, 64-bit address, one vector, disabled.
  bytes[MSI] = PCI_CAP_ID_MSI;
  bytes[MSI + 1] = EXP;
  w16(MSI + 2, PCI_MSI_FLAGS_64BIT);
  // PCI Express, capability version 2, last in the list.
  bytes[EXP] = PCI_CAP_ID_EXP;
  bytes[EXP + 1] = 0;
  const link = spec.link;
  w16(EXP + 2, 2 | ((link ? PCI_EXP_TYPE_ENDPOINT : PCI_EXP_TYPE_RC_END) << 4));
  w32(EXP + PCI_EXP_DEVCAP, 0x00008001); // 256-byte max payload, role-based error reporting
  if (link) {
    const cap = linkCode(link, 'link');
    const sta = linkCode(link.status ?? link, 'link status');
    w32(EXP + PCI_EXP_LNKCAP, cap);
    w16(EXP + PCI_EXP_LNKSTA, sta);
    const gen = cap & 0xf;
    w32(EXP + PCI_EXP_LNKCAP2, ((1 << gen) - 1) << 1); // every speed up to the maximum
    w16(EXP + PCI_EXP_LNKCTL2, gen); // target link speed
  }
  return bytes;
}

/**
 * The `config` file of a PCI parent holding `content` (pciConfigSpace's, or
 * bytes captured from a real device): mode 0644 as the kernel's, size the
 * content's. Writes are accepted and change nothing, as writes to read-only
 * registers do.
 */
export function pciConfigAttribute<Ctx = unknown>(content: Uint8Array): BinaryAttribute<Ctx> {
  const bytes = Uint8Array.from(content);
  return {
    name: 'config',
    size: bytes.length,
    mode: 0o644,
    read: (_ctx, offset, length) => bytes.subarray(offset, offset + length),
    write: () => {
      /* registers read-only here */
    },
  };
}
