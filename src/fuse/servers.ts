/**
 * Which process serves an mdevfs mount. `mdevfs mount` names its mount
 * `mdevfs[<pid>@<start time>]` (the source field of /proc/self/mountinfo), so
 * `mdevfs umount` can find the daemon again from the mount point alone.
 * The name counts only while the mount is root's and that pid is still the
 * same process (its start time, field 22 of /proc/<pid>/stat, is unchanged:
 * a daemon mounted with --no-auto-unmount can die and its pid go to another
 * root FUSE server) holding /dev/fuse.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { MountError, mountsAt, type MountInfoEntry } from './mount.js';

const FSTYPE = 'fuse.mdevfs';

/**
 * A process's start time in clock ticks after boot (field 22 of
 * /proc/<pid>/stat, `start_time` in the kernel's fs/proc/array.c
 * do_task_stat()); with the pid it names one process for good. Undefined if
 * the process is gone.
 */
export async function processStartTime(pid: number): Promise<string | undefined> {
  const stat = await fsp.readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  // The command name (field 2) may hold spaces and parentheses: count from its last ')'.
  const start = stat?.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  return start && /^\d+$/.test(start) ? start : undefined;
}

/** The mount's source for a daemon that `mdevfs umount` may stop: its pid and start time. */
export function serverFsname(pid: number, startTime: string): string {
  return `mdevfs[${pid}@${startTime}]`;
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

/** The pid named by the mount's source, if that process (same start time) is root's mount's FUSE server. */
export async function serverPid(entry: MountInfoEntry): Promise<number | undefined> {
  const m = /^mdevfs\[(\d+)@(\d+)\]$/.exec(entry.source);
  if (!m || !entry.superOptions.split(',').includes('user_id=0')) return undefined;
  const pid = Number(m[1]);
  if ((await processStartTime(pid)) !== m[2]) return undefined;
  const fds = await fsp.readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
  for (const fd of fds) {
    if ((await fsp.readlink(`/proc/${pid}/fd/${fd}`).catch(() => '')) === '/dev/fuse') return pid;
  }
  return undefined;
}
