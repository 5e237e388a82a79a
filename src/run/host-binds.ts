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
 * They are staged in the run's first batch of mounts (./script.ts, with the
 * host's sysfs as fd 3) and bound into the tree in the second.
 */
import type { KDir } from '../kernfs/index.js';
import type { BaseDir } from '../overlay/index.js';
import { shQuote, type LenientGroup, type ScriptStep } from './script.js';

/** The host paths bound straight over the merged tree. */
export const HOST_BOUND = ['devices/system'];

/** Where the host's subtrees are staged, read-only, before the tree is mounted (in the run's staging tmpfs, ./mounts.ts). */
export const STAGED_HOST_DIR = '/sys/mdevfs-host';

/** HOST_BOUND's paths that are directories in the base. */
export function hostStagePaths(base: BaseDir): string[] {
  return HOST_BOUND.filter(rel => !!base.lstat('/' + rel)?.isDirectory());
}

/** The directories the staging needs (made with the run's other staging directories). */
export const hostStageDirs = (paths: readonly string[]): string[] => paths.map(rel => `${STAGED_HOST_DIR}/${rel}`);

/** Of the staged paths, those where the tree has nothing. */
export function hostBindPaths(staged: readonly string[], root: KDir): string[] {
  return staged.filter(rel => !root.lookup(rel));
}

const groupName = (rel: string) => `host_${rel.replace(/[^a-z0-9]/gi, '_')}`;

/**
 * Stage `paths` from the host's sysfs (fd 3 of the batch): rbind each under
 * STAGED_HOST_DIR, then remount every mount there read-only. Done before the
 * run's mounts are made shared, so the copies that reach the command's mount
 * namespace (a slave, ./gate.ts) are read-only too: a remount's flags do not
 * propagate. Each path is a lenient group of its own: one that could not be
 * staged is served through the overlay, as before. mountinfo's field 5 is the
 * mount point (awk: the shell's read builtin takes a system call per byte).
 */
export function hostStageSteps(paths: readonly string[]): { steps: ScriptStep[]; groups: LenientGroup[] } {
  const groups = paths.map(rel => ({ name: groupName(rel), undo: [`${STAGED_HOST_DIR}/${rel}`] }));
  const steps = paths.flatMap(rel => {
    const t = shQuote(`${STAGED_HOST_DIR}/${rel}`);
    const group = groupName(rel);
    const what = `bind the host's /sys/${rel}`;
    return [
      { argv: ['mount', '--no-canonicalize', '--rbind', `/proc/self/fd/3/${rel}`, `${STAGED_HOST_DIR}/${rel}`], what, group },
      {
        sh:
          `for mp in $(awk -v t=${t} '$5 == t || index($5, t "/") == 1 { print $5 }' /proc/self/mountinfo); do ` +
          `mount --no-canonicalize -o remount,bind,ro "$mp" || exit 1; done`,
        what: `make the host's /sys/${rel} read-only`,
        group,
      },
    ];
  });
  return { steps, groups };
}

/** Bind the staged `paths` into the tree at `treeDir` (before the tree goes over /sys, with them). */
export function hostBindSteps(paths: readonly string[], treeDir: string): { steps: ScriptStep[]; groups: LenientGroup[] } {
  const groups = paths.map(rel => ({ name: groupName(rel), undo: [] }));
  const steps = paths.map(rel => ({
    argv: ['mount', '--no-canonicalize', '--rbind', `${STAGED_HOST_DIR}/${rel}`, `${treeDir}/${rel}`],
    what: `bind the host's /sys/${rel}`,
    group: groupName(rel),
  }));
  return { steps, groups };
}
