/**
 * Speed for the host subtree that tools read most and the emulation never
 * fills, devices/system (CPUs, NUMA nodes, memory blocks: lscpu, libvirt's
 * nodeinfo): inside a run it is bound read-only straight from the host's
 * sysfs over the merged tree, so reading /sys/devices/system/cpu/online costs
 * two FUSE lookups (devices, system) instead of a round trip per component
 * plus open, read and release (docs/overlay.md#what-it-costs).
 *
 * Only that one: every mount costs the run's start a few milliseconds (more
 * than 100 ms for all the host's top-level directories with their cgroup
 * submounts, measured), and the rest is read rarely. The bind is an rbind
 * (file systems mounted below come along), then every mount at or below it
 * is remounted read-only, since an rbind's -o ro reaches its top mount only.
 * These steps run in the run's last batch (./script.ts), with the host's
 * sysfs as its fd 3.
 */
import type { KDir } from '../kernfs/index.js';
import type { BaseDir } from '../overlay/index.js';
import { shQuote, type LenientGroup, type ScriptStep } from './script.js';

/** The host paths bound straight over the merged tree. */
export const HOST_BOUND = ['devices/system'];

/** HOST_BOUND's paths that are directories in the base and where the tree has nothing. */
export function hostBindPaths(base: BaseDir, root: KDir): string[] {
  return HOST_BOUND.filter(rel => !root.lookup(rel) && !!base.lstat('/' + rel)?.isDirectory());
}

/**
 * Bind `paths` from the host's sysfs (fd 3 of the batch) over /sys, each a
 * lenient group of its own: a path that could not be bound (or made
 * read-only, then it is detached again) is served through the overlay, as
 * before. mountinfo's field 5 is the mount point (awk: the shell's read
 * builtin takes a system call per byte).
 */
export function hostBindSteps(paths: readonly string[]): { steps: ScriptStep[]; groups: LenientGroup[] } {
  const groups = paths.map((_, i) => ({ name: `host${i}`, undo: [] }));
  const steps = paths.map((rel, i) => {
    const t = shQuote(`/sys/${rel}`);
    const sh =
      `mount --no-canonicalize --rbind ${shQuote(`/proc/self/fd/3/${rel}`)} ${t} && ` +
      `for mp in $(awk -v t=${t} '$5 == t || index($5, t "/") == 1 { print $5 }' /proc/self/mountinfo); do ` +
      `mount --no-canonicalize -o remount,bind,ro "$mp" || { echo "cannot make $mp read-only"; umount -l ${t}; exit 1; }; done`;
    return { sh, what: `bind the host's /sys/${rel}`, group: groups[i]!.name };
  });
  return { steps, groups };
}
