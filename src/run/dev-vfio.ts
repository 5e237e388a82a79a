/**
 * /dev/vfio inside a run's private mount namespace, without touching the
 * host's /dev: /dev becomes an overlay whose upper layer is a directory in
 * the run's staging tmpfs, so `mkdir /dev/vfio` lands only there; the VFIO
 * device files' FUSE mount is then bound on it. Every submount of /dev
 * (pts, shm, mqueue...) is bound again on top of the overlay, from an rbind
 * of the original /dev made first (the overlay's lower layer shows the /dev
 * file system alone, not what is mounted in it).
 *
 * The overlay is put in place with the run's first batch of mount(8) steps
 * (./script.ts), the device files' bind once they are mounted. Both steps
 * are lenient: without an overlay (a kernel without overlayfs), the run goes
 * on without /dev/vfio. Nothing is unmounted: the namespace takes it all.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { LenientGroup, ScriptStep } from './script.js';

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

/** The lenient group of the /dev steps: on a failure, /dev and its rbind are detached again. */
export function devGroup(scratch: string): LenientGroup {
  return { name: 'dev', undo: [DEV, path.join(scratch, 'dev')] };
}

/** The directories the /dev steps need in the staging tmpfs (made with the run's other staging directories). */
export function devScratchDirs(scratch: string): string[] {
  return ['upper', 'work', 'dev'].map(d => path.join(scratch, d));
}

/** The steps that put the overlay over /dev, with its submounts bound again and an empty /dev/vfio. */
export async function devOverlaySteps(scratch: string): Promise<ScriptStep[]> {
  const [upper, work, old] = devScratchDirs(scratch) as [string, string, string];
  const subs = submountsOf(await fsp.readFile('/proc/self/mountinfo', 'utf8'), DEV);
  const group = 'dev';
  return [
    { argv: ['mount', '--rbind', DEV, old], what: `bind ${DEV} to ${old}`, group },
    {
      argv: ['mount', '-t', 'overlay', 'mdevfs-dev', '-o', `lowerdir=${DEV},upperdir=${upper},workdir=${work}`, DEV],
      what: `put an overlay over ${DEV}`,
      group,
    },
    ...subs.map(rel => ({ argv: ['mount', '--rbind', path.join(old, rel), path.join(DEV, rel)], what: `bind ${DEV}/${rel} again`, group })),
    { argv: ['mkdir', '-p', DEV_VFIO], what: `create ${DEV_VFIO}`, group },
  ];
}

/** The step that binds the mounted device files (`vfioTree`) on /dev/vfio. */
export function vfioBindStep(vfioTree: string): ScriptStep {
  // --no-canonicalize: mount(8) would stat the FUSE path first, a round trip to this daemon for nothing.
  return {
    argv: ['mount', '--no-canonicalize', '--bind', vfioTree, DEV_VFIO],
    what: `bind the VFIO device files on ${DEV_VFIO}`,
    group: 'dev',
  };
}
