/**
 * A private /run for a run with udev: the command sees the host's /run
 * entries, each bound back in place (so sockets such as D-Bus's still
 * connect; an overlay would break them), on a fresh tmpfs, in which a new
 * top-level entry lands privately, and a private /run/udev in place of the
 * host's (if any):
 *
 * - `/run/udev/control`: libudev's monitor joins no netlink group unless it
 *   exists (systemd device-monitor.c device_monitor_new_full(): "The udev
 *   service seems not to be active"; only access(F_OK) is checked), and
 *   `udevadm settle` returns at once when it exists and nothing is queued;
 * - `/run/udev/data/`: the udev database (the daemon keeps it: src/udev/database.ts).
 *
 * Asynchronous, with mount(8): the caller is the FUSE daemon (docs/fuse.md#self-deadlock).
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { exec } from '../fuse/programs.js';
import { mountOrThrow } from './mounts.js';

export const RUN = '/run';
export const RUN_UDEV = '/run/udev';
export const UDEV_CONTROL = '/run/udev/control';
export const UDEV_DATA = '/run/udev/data';
/** In the run's staging tmpfs (see ./mounts.ts): where the host's /run stays reachable. */
export const STAGED_RUN_SCRATCH = '/sys/mdevfs-run';

export interface PrivateRun {
  /** Undo (lazily; never throws). The namespace would take it all anyway. */
  remove(): Promise<void>;
}

/** Put the private /run with its /run/udev in place. Throws with a one-line message, having undone what it did. */
export async function mountPrivateRun(scratch: string): Promise<PrivateRun> {
  const old = path.join(scratch, 'run');
  const undo: string[] = [];
  const remove = async () => {
    for (const target of undo.reverse()) await exec('umount', ['-l', target]);
    undo.length = 0;
  };
  try {
    const entries = await fsp.readdir(RUN, { withFileTypes: true });
    const mode = (await fsp.stat(RUN)).mode & 0o7777;
    await fsp.mkdir(old, { recursive: true, mode: 0o755 });
    await mountOrThrow(['--rbind', RUN, old], `bind ${RUN} to ${old}`);
    undo.push(old);
    await mountOrThrow(['-t', 'tmpfs', '-o', `mode=${mode.toString(8)}`, 'mdevfs-run', RUN], `put a tmpfs over ${RUN}`);
    undo.push(RUN);
    for (const e of entries) {
      if (e.name === 'udev') continue;
      const from = path.join(old, e.name);
      const to = path.join(RUN, e.name);
      if (e.isSymbolicLink()) {
        await fsp.symlink(await fsp.readlink(from), to);
        continue;
      }
      // mount(8) itself may have made one already (libmount's /run/mount/utab).
      if (e.isDirectory()) await fsp.mkdir(to, { recursive: true });
      else await fsp.writeFile(to, '', { flag: 'a' });
      await mountOrThrow(['--rbind', from, to], `bind ${to} again`);
    }
    await fsp.mkdir(RUN_UDEV, { mode: 0o755 });
    await fsp.writeFile(UDEV_CONTROL, '', { mode: 0o600 });
    await fsp.mkdir(UDEV_DATA, { mode: 0o755 });
  } catch (e) {
    await remove();
    throw e;
  }
  return { remove };
}
