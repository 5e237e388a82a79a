/**
 * The udev database (/run/udev/data/<id>), as udevd writes it when no rule
 * has added anything (systemd sd-device device-private.c device_update_db()):
 *
 * - a device without information of its own (no devlinks, no properties set
 *   by rules, no tags) and without a device number gets no entry: udevd
 *   removes it (mdev devices, parents);
 * - a device with a device number gets one all the same, named by
 *   device_get_device_id() `c<major>:<minor>` for a char device, and empty
 *   (the `I:`/`E:`/`G:` lines are written only with information), mode 0644
 *   (udevd's fchmod; 01644 only for db_persist, which needs a rule);
 * - on `remove` the entry goes (udevd's device_delete_db()).
 *
 * udevd writes the entry before it broadcasts the event, so `handle` runs
 * before the netlink send and writes synchronously (the directory is a
 * tmpfs of the run's, never the FUSE tree).
 */
import { renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Uevent } from '../core/api.js';

/** device_get_device_id(): `c<major>:<minor>` for a char device; undefined for one without a device number. */
export function udevDeviceId(ev: Uevent): string | undefined {
  if (ev.MAJOR === undefined || ev.MINOR === undefined || Number(ev.MAJOR) === 0) return undefined;
  // Every char device the core emits is a char device (the kernel's 'b' is for block devices, which it has none of).
  return `c${String(ev.MAJOR)}:${String(ev.MINOR)}`;
}

export class UdevDatabase {
  readonly #dir: string;
  readonly #log: (m: string) => void;

  /** The file system the directory was on when the run made it: its private tmpfs. */
  readonly #dev: number;
  #closed = false;

  constructor(dir: string, log: (m: string) => void) {
    this.#dir = dir;
    this.#log = log;
    this.#dev = statSync(dir).dev;
  }

  /** No more writes: the run is tearing down its private /run. */
  close(): void {
    this.#closed = true;
  }

  /** A core 'uevent' listener. Failures are logged, never thrown. */
  handle(ev: Uevent): void {
    if (this.#closed) return;
    const id = udevDeviceId(ev);
    if (id === undefined) return;
    const file = path.join(this.#dir, id);
    try {
      // Never write through to whatever /run is once the private one is gone
      // (the daemon is root, and the host's /run/udev/data is udevd's).
      if (statSync(this.#dir).dev !== this.#dev) {
        this.#closed = true;
        this.#log(`udev database ${this.#dir}: no longer the run's private directory; not written any more`);
        return;
      }
      if (ev.ACTION === 'remove') {
        rmSync(file, { force: true });
      } else {
        // fopen_temporary() + rename, as udevd: a reader never sees a half-written entry.
        const tmp = `${file}.mdevfs-tmp`;
        writeFileSync(tmp, '', { mode: 0o644 });
        renameSync(tmp, file);
      }
    } catch (e) {
      this.#log(`udev database ${file}: ${(e as Error).message}`);
    }
  }
}
