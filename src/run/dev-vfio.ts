/**
 * /dev/vfio inside a run's private mount namespace, without touching the
 * host's /dev: /dev becomes an overlay whose upper layer is a directory in
 * the run's staging tmpfs, so `mkdir /dev/vfio` lands only there; the VFIO
 * device files' FUSE mount is then bound on it. Every submount of /dev
 * (pts, shm, mqueue...) is bound again on top of the overlay, from an rbind
 * of the original /dev made first (the overlay's lower layer shows the /dev
 * file system alone, not what is mounted in it).
 *
 * Everything is done with mount(8) as child processes and asynchronous fs
 * calls: the caller is the FUSE daemon (docs/fuse.md#self-deadlock).
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { exec } from '../fuse/programs.js';
import { mountOrThrow } from './mounts.js';

export const DEV = '/dev';
export const DEV_VFIO = '/dev/vfio';
/** In the run's staging tmpfs (see ./mounts.ts): the device files' FUSE mount point, and the overlay's scratch. */
export const STAGED_VFIO_DIR = '/sys/mdevfs-vfio';
export const STAGED_DEV_SCRATCH = '/sys/mdevfs-dev';

/**
 * The top-level submounts of `dir` in /proc/self/mountinfo (a mount below
 * another one comes along with --rbind), as paths relative to `dir`.
 */
export function submountsOf(mountinfo: string, dir: string): string[] {
  const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  const below = new Set<string>();
  for (const line of mountinfo.split('\n')) {
    const mp = line.split(' ')[4];
    if (mp === undefined) continue;
    const p = unescape(mp);
    if (p.startsWith(dir + '/')) below.add(p.slice(dir.length + 1));
  }
  const all = [...below].sort();
  return all.filter(p => !all.some(q => q !== p && p.startsWith(q + '/')));
}

export interface DevVfio {
  /** Undo (lazily; never throws). The namespace would take it all anyway. */
  remove(): Promise<void>;
}

/**
 * Put `vfioTree` (the mounted device files) at /dev/vfio. `scratch` is an
 * empty directory on a tmpfs private to the run (the upper layer and the
 * rbind of the original /dev live there). Throws with a one-line message;
 * whatever was mounted before the failure is undone.
 */
export async function mountDevVfio(vfioTree: string, scratch: string): Promise<DevVfio> {
  const upper = path.join(scratch, 'upper');
  const work = path.join(scratch, 'work');
  const old = path.join(scratch, 'dev');
  const undo: string[] = [];
  const remove = async () => {
    for (const target of undo.reverse()) await exec('umount', ['-l', target]);
    undo.length = 0;
  };
  try {
    for (const d of [upper, work, old]) await fsp.mkdir(d, { recursive: true, mode: 0o755 });
    const subs = submountsOf(await fsp.readFile('/proc/self/mountinfo', 'utf8'), DEV);
    await mountOrThrow(['--rbind', DEV, old], `bind ${DEV} to ${old}`);
    undo.push(old);
    await mountOrThrow(
      ['-t', 'overlay', 'mdevfs-dev', '-o', `lowerdir=${DEV},upperdir=${upper},workdir=${work}`, DEV],
      `put an overlay over ${DEV}`,
    );
    undo.push(DEV);
    for (const rel of subs) {
      await mountOrThrow(['--rbind', path.join(old, rel), path.join(DEV, rel)], `bind ${DEV}/${rel} again`);
    }
    await fsp.mkdir(DEV_VFIO, { recursive: true, mode: 0o755 });
    await mountOrThrow(['--bind', vfioTree, DEV_VFIO], `bind the VFIO device files on ${DEV_VFIO}`);
    undo.push(DEV_VFIO);
  } catch (e) {
    await remove();
    throw e;
  }
  return { remove };
}
