/**
 * The small vocabulary of the plugin API: profiles, device APIs, errno-like
 * values, VFIO constants, the event and request shapes, and attributes.
 */
import type { ErrnoName } from '../errno.js';

/** What a callback may throw to fail with a chosen errno (an MdevError is one). */
export type ErrnoLike = ErrnoName | { errno: ErrnoName | number };

/** Which kernel the tree presents: 'modern' (today's), 'legacy' (4.10). */
export type Profile = 'modern' | 'legacy';

/** include/uapi/linux/vfio.h VFIO_DEVICE_API_*_STRING. */
export type DeviceApi = 'vfio-pci' | 'vfio-platform' | 'vfio-amba' | 'vfio-ccw' | 'vfio-ap';
/** Every DeviceApi, as the `device_api` file may show it (the VFIO_DEVICE_API_*_STRING values). */
export const DEVICE_APIS: readonly DeviceApi[] = ['vfio-pci', 'vfio-platform', 'vfio-amba', 'vfio-ccw', 'vfio-ap'];

/** What a callback may return: a value, or a promise of one. */
export type Awaitable<T> = T | Promise<T>;

// ---------------------------------------------------------------------------
// Attributes (sysfs files a plugin contributes)

/**
 * One sysfs attribute file; `Ctx` is the object it belongs to (a `Parent`,
 * an `MdevType` or an `MdevDevice`).
 *
 * `show` produces the whole file on a read at offset 0; reads at later
 * offsets see that snapshot (fs/sysfs/file.c, seq_file). It returns a string
 * (written as UTF-8) or binary data (a Buffer or any Uint8Array); anything else fails the read
 * with EIO. sysfs adds nothing, so include the trailing "\n"; output is cut
 * to 4095 bytes (PAGE_SIZE - 1).
 *
 * `store` receives each write(2) as one call, at most 4096 bytes, in two
 * forms: `value`, the bytes decoded as UTF-8 (a byte that is not UTF-8
 * becomes U+FFFD), and `raw`, the bytes exactly as written (parse these when
 * the file takes binary or non-UTF-8 input). Nothing is trimmed: an `echo`
 * brings its "\n". An empty write never reaches it. Return to accept the
 * whole write; throw an errno to fail it.
 *
 * A read without `show`, or a write without `store`, that `mode` lets through
 * fails with EIO (dev_attr_show / dev_attr_store).
 *
 * Both may be async; each call is bounded by the call timeout (ETIMEDOUT).
 */
export interface Attribute<Ctx> {
  name: string;
  /** Permission bits. Default: 0644 with show and store, 0200 store only, else 0444. */
  mode?: number;
  show?(ctx: Ctx): Awaitable<string | Uint8Array>;
  store?(ctx: Ctx, value: string, raw: Buffer): Awaitable<void>;
}

/**
 * A binary attribute file (the kernel's struct bin_attribute,
 * include/linux/sysfs.h; fs/sysfs/file.c sysfs_kf_bin_read/_write), such as
 * a PCI device's `config`: content of a fixed `size`, which is also the
 * file's st_size, read at any offset.
 *
 * `read` gets an offset and a length already cut to the size (and to 4096
 * bytes, one page per read(2)), and returns those bytes (a Buffer or
 * Uint8Array; fewer is a short read, more are cut). It runs on every read:
 * there is no snapshot and no PAGE_SIZE - 1 cut. A read at or past the end
 * returns nothing without calling it. For content held whole, return
 * `bytes.subarray(offset, offset + length)`.
 *
 * `write` gets the offset and the bytes of one write(2), cut to the size (a
 * write at or past the end fails with EFBIG); return to accept them all.
 * A read without `read`, or a write without `write`, that `mode` lets
 * through fails with EIO. Both may be async, bounded by the call timeout.
 */
export interface BinaryAttribute<Ctx> {
  name: string;
  /** Size in bytes: st_size, and where reads and writes stop. 0: unknown (nothing is cut, st_size 0). */
  size: number;
  /** Permission bits. Default: 0644 with read and write, 0200 write only, else 0444. */
  mode?: number;
  read?(ctx: Ctx, offset: number, length: number): Awaitable<Uint8Array>;
  write?(ctx: Ctx, offset: number, data: Uint8Array): Awaitable<void>;
}

/**
 * A set of attributes (struct attribute_group); a `name` puts them in a
 * subdirectory (e.g. 'vendor'). `binAttrs` are its binary attributes
 * (attribute_group.bin_attrs), in the same directory.
 */
export interface AttributeGroup<Ctx> {
  name?: string;
  attrs: Attribute<Ctx>[];
  binAttrs?: BinaryAttribute<Ctx>[];
}

// ---------------------------------------------------------------------------
// VFIO constants, uevents and the shapes of VFIO requests

/** Page protection for pinPages (IOMMU_READ | IOMMU_WRITE). */
export const IOMMU_READ = 1;
export const IOMMU_WRITE = 2;
/** vfio_pin_pages() refuses more than this many entries at once (E2BIG). */
export const VFIO_PIN_PAGES_MAX_ENTRIES = 512;
/** VFIO region offsets: index << 40 (VFIO_PCI_OFFSET_SHIFT). */
export const VFIO_PCI_OFFSET_SHIFT = 40;
export const VFIO_PCI_CONFIG_REGION_INDEX = 7;

/** An uevent as the kernel would send it (keys and order as the kernel's). */
export interface Uevent {
  ACTION: 'add' | 'remove' | 'bind' | 'unbind' | 'change' | 'move' | 'online' | 'offline';
  /** '/devices/virtual/mtty/mtty/<uuid>' (leading slash, no /sys). */
  DEVPATH: string;
  SUBSYSTEM: string;
  DRIVER?: string;
  MDEV_STATE?: 'registered' | 'unregistered';
  SEQNUM: number;
  /**
   * A parent's other dev_uevent variables (PCI_CLASS, PCI_ID, PCI_SUBSYS_ID,
   * PCI_SLOT_NAME, MODALIAS, ST...), as its `uevent` file shows them.
   */
  [key: string]: string | number | undefined;
}

/** A VFIO region mapping request (struct vm_area_struct, reduced). */
export interface MmapRequest {
  /** Byte offset in the device file: region index << 40 | offset in region. */
  offset: number;
  length: number;
  /** PROT_READ | PROT_WRITE bits. */
  prot: number;
}

/** VFIO_IOMMU_NOTIFY_DMA_UNMAP: the plugin must unpin every page it pinned in [iova, iova+size). */
export interface DmaUnmapEvent {
  iova: number;
  size: number;
}
