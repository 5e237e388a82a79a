/**
 * The few VFIO uapi constants and struct layouts the example drivers answer
 * (include/uapi/linux/vfio.h). ioctl arguments arrive as a Buffer holding the
 * user's struct; fields are little-endian, as on x86 and arm64 hosts.
 */
import { MdevError } from 'mdevfs';

/** _IO(VFIO_TYPE, VFIO_BASE + n) with VFIO_TYPE ';' (0x3b) and VFIO_BASE 100. */
const vfioIo = (n: number): number => (0x3b << 8) | (100 + n);
export const VFIO_DEVICE_GET_INFO = vfioIo(7); // 0x3b6b
export const VFIO_DEVICE_GET_REGION_INFO = vfioIo(8); // 0x3b6c
export const VFIO_DEVICE_GET_IRQ_INFO = vfioIo(9); // 0x3b6d
export const VFIO_DEVICE_SET_IRQS = vfioIo(10); // 0x3b6e
export const VFIO_DEVICE_RESET = vfioIo(11); // 0x3b6f

export const VFIO_DEVICE_FLAGS_RESET = 1 << 0;
export const VFIO_DEVICE_FLAGS_PCI = 1 << 1;

export const VFIO_PCI_BAR0_REGION_INDEX = 0;
export const VFIO_PCI_BAR1_REGION_INDEX = 1;
export const VFIO_PCI_BAR5_REGION_INDEX = 5;
export const VFIO_PCI_CONFIG_REGION_INDEX = 7;
export const VFIO_PCI_NUM_REGIONS = 9;

export const VFIO_PCI_INTX_IRQ_INDEX = 0;
export const VFIO_PCI_MSI_IRQ_INDEX = 1;
export const VFIO_PCI_REQ_IRQ_INDEX = 4;
export const VFIO_PCI_NUM_IRQS = 5;

export const VFIO_REGION_INFO_FLAG_READ = 1 << 0;
export const VFIO_REGION_INFO_FLAG_WRITE = 1 << 1;

export const VFIO_IRQ_INFO_EVENTFD = 1 << 0;
export const VFIO_IRQ_INFO_MASKABLE = 1 << 1;
export const VFIO_IRQ_INFO_AUTOMASKED = 1 << 2;
export const VFIO_IRQ_INFO_NORESIZE = 1 << 3;

/** VFIO_PCI_OFFSET_SHIFT: a region's data starts at index << 40 in the device file. */
const REGION_SPAN = 2 ** 40;

/** VFIO_PCI_INDEX_TO_OFFSET. */
export function regionOffset(index: number): number {
  return index * REGION_SPAN;
}

/** VFIO_PCI_OFFSET_TO_INDEX and the offset inside the region. */
export function splitOffset(pos: number): { index: number; offset: number } {
  return { index: Math.floor(pos / REGION_SPAN), offset: pos % REGION_SPAN };
}

/**
 * The `copy_from_user(&info, arg, minsz)` + `if (info.argsz < minsz) return -EINVAL`
 * prologue every VFIO ioctl handler starts with: EFAULT when the caller's buffer
 * is shorter than minsz, EINVAL when its argsz field is.
 */
export function checkArgsz(arg: Buffer, minsz: number): void {
  if (arg.length < minsz) throw new MdevError('EFAULT', `ioctl argument shorter than ${minsz} bytes`);
  if (arg.readUInt32LE(0) < minsz) throw new MdevError('EINVAL', `argsz < ${minsz}`);
}

// struct vfio_device_info { u32 argsz, flags, num_regions, num_irqs; ... }
export const DEVICE_INFO_MINSZ = 16;
// struct vfio_region_info { u32 argsz, flags, index, cap_offset; u64 size, offset; }
export const REGION_INFO_MINSZ = 32;
// struct vfio_irq_info { u32 argsz, flags, index, count; }
export const IRQ_INFO_MINSZ = 16;

export function writeDeviceInfo(arg: Buffer, info: { flags: number; numRegions: number; numIrqs: number }): void {
  arg.writeUInt32LE(info.flags, 4);
  arg.writeUInt32LE(info.numRegions, 8);
  arg.writeUInt32LE(info.numIrqs, 12);
}

export function writeRegionInfo(arg: Buffer, info: { flags: number; size: number; offset: number }): void {
  arg.writeUInt32LE(info.flags, 4);
  arg.writeUInt32LE(0, 12); // cap_offset: no capability chain
  arg.writeBigUInt64LE(BigInt(info.size), 16);
  arg.writeBigUInt64LE(BigInt(info.offset), 24);
}

export function writeIrqInfo(arg: Buffer, info: { flags: number; count: number }): void {
  arg.writeUInt32LE(info.flags, 4);
  arg.writeUInt32LE(info.count, 12);
}
