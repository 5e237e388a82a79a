/**
 * The VFIO device files of the mdev core, as a small /dev/vfio: one file per
 * IOMMU group of a mediated device, named by the group id (`<N>`), exactly
 * where libvirt and KubeVirt look (/dev/vfio/<basename of iommu_group>).
 *
 * FUSE cannot carry the group ioctls (VFIO_GROUP_SET_CONTAINER,
 * VFIO_GROUP_GET_DEVICE_FD), nor any ioctl or mmap, so the file is the
 * group's single mediated device itself: open(2) opens the VFIO device
 * (`core.vfio.open`, the plugin's `open`; its errno goes to open(2)),
 * pread/pwrite at VFIO region offsets (index << 40 | offset) are the device's
 * read/write, and the last close of each open file description is the
 * device's close. Each open is a separate handle; the plugin's `open` runs on
 * the first and `close` on the last, as for the programmatic API. ioctl and
 * mmap stay with `core.vfio`.
 *
 * Files are regular files (st_size 0, mode 0600, root:root) standing in for
 * character devices. The tree is a function of the core's state: on a
 * device step or a group's removal the named group's file is
 * reconciled with `core.iommuGroups()`, so it exists exactly while the
 * kernel's /dev/vfio/<N> would: from the bus probe of a mediated device until
 * its unbind (after the last close of a removed device).
 *
 * Nothing here knows about FUSE.
 */
import { MdevError, errorMessage } from '../core/errno.js';
import type { CoreChange, MdevCoreApi } from '../core/model.js';
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
    const file = this.root.devFile(String(id), VFIO_DEV_MODE, { open: () => this.open(id) });
    this.files.set(id, file);
  }

  private drop(id: number): void {
    const f = this.files.get(id);
    if (!f) return;
    f.remove();
    this.files.delete(id);
  }

  /** open(2) of /dev/vfio/<id>: the VFIO device of the group's mediated device. */
  private async open(id: number): Promise<DevHandle> {
    let uuid: string | undefined;
    for (const d of this.core.groupDevices(id)) {
      uuid = d.uuid;
      break;
    }
    if (uuid === undefined) throw new MdevError('ENODEV', `IOMMU group ${id} has no mediated device`);
    const h = await this.core.vfio.open(uuid);
    return {
      read: (length, position) => h.read(length, position),
      write: (data, position) => h.write(data, position),
      release: () => h.close(),
    };
  }
}
