/**
 * `mdevfs umount <dir>`: stop the daemon serving <dir> as SIGTERM does
 * (unmount, plugins shut down, exit) and return once it and its mount are
 * gone. The daemon is the one src/fuse/servers.ts finds from the mount;
 * without one (a stale mount, a library mount) the mount is detached lazily.
 */
import { promises as fsp } from 'node:fs';
import { MountError, forceUnmount, mountsAt, type MountInfoEntry } from '../fuse/mount.js';
import { findMdevfsMount, serverPid } from '../fuse/servers.js';
import { UserError } from './errors.js';

/** The mdevfs mount at `dir`; not one is the user's to fix. */
async function findMount(dir: string): Promise<{ mountpoint: string; entry: MountInfoEntry }> {
  try {
    return await findMdevfsMount(dir);
  } catch (e) {
    throw e instanceof MountError ? new UserError(e.message) : e;
  }
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
  const pid = await serverPid(entry);
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
