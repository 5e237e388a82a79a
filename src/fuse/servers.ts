/**
 * Which process serves an mdevfs mount. `mdevfs mount` names its mount
 * `mdevfs[<pid>]` (the source field of /proc/self/mountinfo), so
 * `mdevfs umount` can find the daemon again from the mount point alone;
 * that pid counts only while the mount is root's and the process still
 * holds /dev/fuse (a pid reused by anything else does not).
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { MountError, mountsAt, type MountInfoEntry } from './mount.js';

const FSTYPE = 'fuse.mdevfs';

/** The mount's source for a daemon that `mdevfs umount` may stop. */
export function serverFsname(pid: number): string {
  return `mdevfs[${pid}]`;
}

/** The mdevfs mount at `dir`, found without looking inside it (a wedged daemon would hang a stat). MountError otherwise. */
export async function findMdevfsMount(dir: string): Promise<{ mountpoint: string; entry: MountInfoEntry }> {
  const abs = path.resolve(dir);
  const parent = await fsp.realpath(path.dirname(abs)).catch(() => path.dirname(abs));
  let mountpoint = path.join(parent, path.basename(abs));
  let entries = await mountsAt(mountpoint);
  if (entries.length === 0) {
    // <dir> itself may be a link to the mount point.
    const real = await fsp.realpath(abs).catch(() => undefined);
    if (real && real !== mountpoint) {
      mountpoint = real;
      entries = await mountsAt(real);
    }
  }
  const entry = entries[entries.length - 1];
  if (!entry) throw new MountError(`${dir} is not a mount point`);
  if (entry.fstype !== FSTYPE) throw new MountError(`${mountpoint} is not an mdevfs mount (it is ${entry.fstype})`);
  return { mountpoint, entry };
}

/** The pid named by the mount's source, if that process is root's mount's FUSE server. */
export async function serverPid(entry: MountInfoEntry): Promise<number | undefined> {
  const m = /^mdevfs\[(\d+)\]$/.exec(entry.source);
  if (!m || !entry.superOptions.split(',').includes('user_id=0')) return undefined;
  const pid = Number(m[1]);
  const fds = await fsp.readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
  for (const fd of fds) {
    if ((await fsp.readlink(`/proc/${pid}/fd/${fd}`).catch(() => '')) === '/dev/fuse') return pid;
  }
  return undefined;
}
