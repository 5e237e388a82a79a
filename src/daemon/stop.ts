/**
 * `mdevfs umount <dir>`: stop the daemon serving <dir> as SIGTERM does
 * (unmount, plugins shut down, exit) and return once it and its mount are
 * gone. `mdevfs mount` names its mount `mdevfs[<pid>]` (the source field of
 * /proc/self/mountinfo); that pid is signalled only if the mount is root's
 * and the process is still a FUSE server. Without one (a stale mount, a
 * library mount) the mount is detached lazily.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { forceUnmount, mountsAt, type MountInfoEntry } from '../fuse/mount.js';
import { UserError } from './errors.js';

/** The mount at `dir`, found without looking inside it (a wedged daemon would hang a stat). */
async function findMount(dir: string): Promise<{ mountpoint: string; entry: MountInfoEntry }> {
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
  if (!entry) throw new UserError(`${dir} is not a mount point`);
  if (entry.fstype !== 'fuse.mdevfs') throw new UserError(`${mountpoint} is not an mdevfs mount (it is ${entry.fstype})`);
  return { mountpoint, entry };
}

/** Whether `pid` is alive (a zombie is not: it only waits to be reaped). */
async function alive(pid: number): Promise<boolean> {
  try {
    const stat = await fsp.readFile(`/proc/${pid}/stat`, 'utf8');
    return !/^[ZX]$/.test(stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3));
  } catch {
    return false;
  }
}

/** The daemon's pid from the mount's source, if that process is root's mount's FUSE server. */
async function daemonPid(entry: MountInfoEntry): Promise<number | undefined> {
  const m = /^mdevfs\[(\d+)\]$/.exec(entry.source);
  if (!m || !entry.superOptions.split(',').includes('user_id=0')) return undefined;
  const pid = Number(m[1]);
  const fds = await fsp.readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
  for (const fd of fds) {
    if ((await fsp.readlink(`/proc/${pid}/fd/${fd}`).catch(() => '')) === '/dev/fuse') return pid;
  }
  return undefined;
}

async function until(probe: () => Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!(await probe())) {
    if (Date.now() > end) return false;
    await new Promise(r => setTimeout(r, 50));
  }
  return true;
}

/** Stop the daemon serving `dir`; resolves with its pid (undefined if there was none) once the mount is gone. */
export async function stopMount(dir: string, timeoutMs = 30_000): Promise<number | undefined> {
  const { mountpoint, entry } = await findMount(dir);
  const ours = async () => (await mountsAt(mountpoint)).some(e => e.fstype === entry.fstype && e.source === entry.source);
  const pid = await daemonPid(entry);
  if (pid === undefined) {
    if (!(await forceUnmount(mountpoint))) throw new UserError(`cannot unmount ${mountpoint} (try: fusermount -uz ${mountpoint})`);
  } else {
    try {
      process.kill(pid, 'SIGTERM');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ESRCH')
        throw new UserError(`cannot signal the daemon (pid ${pid}) of ${mountpoint}: ${(e as Error).message}`);
    }
    if (!(await until(async () => !(await alive(pid)), timeoutMs))) {
      throw new UserError(
        `the daemon (pid ${pid}) of ${mountpoint} did not stop within ${timeoutMs / 1000} s (kill -9 ${pid} ends it and its mount)`,
      );
    }
    // A daemon mounted with --no-auto-unmount that died on the way leaves its mount behind.
    if (await ours()) await forceUnmount(mountpoint);
  }
  if (!(await until(async () => !(await ours()), timeoutMs))) throw new UserError(`${mountpoint} is still mounted`);
  return pid;
}
