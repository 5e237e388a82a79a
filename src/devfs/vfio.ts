/**
 * The VFIO device files of the mdev core, as a small /dev/vfio: one file per
 * IOMMU group of a mediated device, named by the group id (`<N>`), exactly
 * where libvirt and KubeVirt look (/dev/vfio/<basename of iommu_group>).
 *
 * The file is the group node (vfio_group_fops in drivers/vfio/group.c):
 * open(2) only claims the group. One open file description at a time: a
 * second open(2) while the group is claimed fails with EBUSY
 * (vfio_group_fops_open's `opened_file`; 4.10's `opened`), and the claim
 * ends with the last close of that description. Opening the group does not
 * open the device, so a claimed group never holds off a `remove` (libvirt's
 * nodeDeviceDestroy keeps the group open while mdevctl writes `remove`).
 *
 * FUSE cannot carry ioctls, so VFIO_GROUP_GET_DEVICE_FD has a stand-in: the
 * first pread/pwrite through the descriptor opens the group's mediated
 * device (`core.vfio.open`, the plugin's `open`; its errno goes to that
 * pread/pwrite, and a later access tries again), and every pread/pwrite is
 * the device's read/write at its VFIO region offset (index << 40 | offset).
 * The device is closed (the plugin's `close`, and a waiting `remove`
 * released) by the last close of the descriptor, as the kernel's group file
 * outlives the device fds that hold a reference on it. Once the device the
 * group was opened for is gone, or being removed, an access that would have
 * to open it fails with ENODEV, as GET_DEVICE_FD does on a group with no
 * device (vfio_device_get_from_name); a device already opened through the
 * descriptor keeps working until the close (a modern remove waits for it).
 * ioctl and mmap stay with `core.vfio`.
 *
 * Files are regular files (st_size 0, mode 0600, root:root) standing in for
 * character devices. The tree is a function of the core's state: on a
 * device step or a group's removal the named group's file is
 * reconciled with `core.iommuGroups()`, so it exists exactly while the
 * kernel's /dev/vfio/<N> would: from the bus probe of a mediated device until
 * its unbind (after the last close of a removed device). A group id used
 * again gets a new file, with a claim of its own, as the kernel makes a new
 * vfio_group: a descriptor of the old one never reaches the new device.
 *
 * Nothing here knows about FUSE.
 */
import { MdevError, errorMessage } from '../core/errno.js';
import type { CoreChange, CoreDevice, MdevCoreApi, VfioDeviceHandle } from '../core/model.js';
import { CoreView } from '../core/core-view.js';
import { KernfsRoot, type DevHandle, type KDevFile } from '../kernfs/index.js';

/** crw------- root root, as udev leaves /dev/vfio/<N>. */
export const VFIO_DEV_MODE = 0o600;

export interface VfioDevOptions {
  /** Diagnostics (reconcile failures). */
  log?: (message: string) => void;
}

export class VfioDevPresenter extends CoreView {
  readonly root = new KernfsRoot();
  private readonly files = new Map<number, KDevFile>();
  /** The group each device was last seen in, to reconcile it once the device lets go. */
  private readonly groupOf = new Map<string, number>();
  /** The files held open (one open file description each, as vfio_group's `opened_file`). */
  private readonly claimed = new WeakSet<KDevFile>();
  private readonly log: (m: string) => void;

  constructor(core: MdevCoreApi, opts: VfioDevOptions = {}) {
    super(core);
    this.log = opts.log ?? (() => {});
  }

  /** The group ids that have a file. */
  groups(): number[] {
    return [...this.files.keys()].sort((a, b) => a - b);
  }

  syncAll(): void {
    const want = new Set(this.core.iommuGroups());
    for (const id of want) this.ensure(id);
    for (const id of [...this.files.keys()]) if (!want.has(id)) this.drop(id);
  }

  protected handle(c: CoreChange): void {
    try {
      switch (c.kind) {
        case 'group-removed':
          this.sync(c.group);
          break;
        case 'device': {
          const d = c.device;
          const before = this.groupOf.get(d.uuid);
          const now = d.state === 'gone' ? undefined : d.iommuGroup;
          if (now === undefined) this.groupOf.delete(d.uuid);
          else this.groupOf.set(d.uuid, now);
          if (before !== undefined && before !== now) this.sync(before);
          if (now !== undefined) this.sync(now);
          break;
        }
        default:
          break;
      }
    } catch (e) {
      this.log(`vfio: reconciling failed: ${errorMessage(e)}`);
    }
  }

  /** Whether the core has group `id` now (a mediated device's group holds exactly its device). */
  private has(id: number): boolean {
    for (const _ of this.core.groupDevices(id)) return true;
    return false;
  }

  private sync(id: number): void {
    if (this.has(id)) this.ensure(id);
    else this.drop(id);
  }

  private ensure(id: number): void {
    const have = this.files.get(id);
    if (have && !have.dead) return;
    this.root.removeChild(String(id));
    const file: KDevFile = this.root.devFile(String(id), VFIO_DEV_MODE, { open: () => this.claim(file, id) });
    this.files.set(id, file);
  }

  private drop(id: number): void {
    const f = this.files.get(id);
    if (!f) return;
    f.remove();
    this.files.delete(id);
  }

  /**
   * open(2) of /dev/vfio/<id> (vfio_group_fops_open): ENODEV once the group
   * has no device, EBUSY while another open file description holds it;
   * otherwise the group is claimed until that description's last close. The
   * device itself is not opened here.
   */
  private claim(file: KDevFile, id: number): DevHandle {
    let dev: CoreDevice | undefined;
    for (const d of this.core.groupDevices(id)) {
      dev = d;
      break;
    }
    if (file.dead || dev === undefined) throw new MdevError('ENODEV', `IOMMU group ${id} has no mediated device`);
    if (this.claimed.has(file)) throw new MdevError('EBUSY', `IOMMU group ${id} is already open`);
    this.claimed.add(file);
    return new GroupFile(this.core, file, dev, () => this.claimed.delete(file));
  }
}

/**
 * One open file description of a group file: the claim on the group, and
 * the group's device once an access has opened it (the stand-in for
 * VFIO_GROUP_GET_DEVICE_FD), closed by the description's last close.
 */
class GroupFile implements DevHandle {
  #device: Promise<VfioDeviceHandle> | undefined;
  #released = false;

  constructor(
    private readonly core: MdevCoreApi,
    private readonly file: KDevFile,
    private readonly dev: CoreDevice,
    private readonly unclaim: () => void,
  ) {}

  async read(length: number, position: number): Promise<Buffer> {
    return (await this.device()).read(length, position);
  }

  async write(data: Buffer, position: number): Promise<number> {
    return (await this.device()).write(data, position);
  }

  /** The last close: the device's close (if an access opened it), then the group is free again. */
  async release(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    const pending = this.#device;
    this.#device = undefined;
    try {
      const h = await pending?.catch(() => undefined);
      await h?.close();
    } finally {
      this.unclaim();
    }
  }

  /**
   * The group's device, opened on first use (synchronously remembered, so
   * concurrent accesses open it once). A failed open is forgotten: the next
   * access tries again, as another GET_DEVICE_FD would.
   */
  private device(): Promise<VfioDeviceHandle> {
    if (this.#released) return Promise.reject(new MdevError('EBADF', 'the group file is closed'));
    if (this.#device) return this.#device;
    const p = this.openDevice();
    this.#device = p;
    p.catch(() => {
      if (this.#device === p) this.#device = undefined;
    });
    return p;
  }

  private async openDevice(): Promise<VfioDeviceHandle> {
    const { uuid } = this.dev;
    // The device this group was opened for, and no other: a group id or a UUID used again is a new object.
    if (this.file.dead || this.core.device(uuid) !== this.dev) throw new MdevError('ENODEV', `${uuid} is gone`);
    return this.core.vfio.open(uuid);
  }
}
