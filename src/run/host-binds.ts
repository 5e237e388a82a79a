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
 */
import { spawn } from 'node:child_process';
import { firstLine } from '../core/errno.js';
import type { KDir } from '../kernfs/index.js';
import type { BaseDir } from '../overlay/index.js';

/** The host paths bound straight over the merged tree. */
export const HOST_BOUND = ['devices/system'];

/** HOST_BOUND's paths that are directories in the base and where the tree has nothing. */
export function hostBindPaths(base: BaseDir, root: KDir): string[] {
  return HOST_BOUND.filter(rel => !root.lookup(rel) && !!base.lstat('/' + rel)?.isDirectory());
}

// $1.. are the paths; fd 3 is the host's sysfs. mountinfo's field 5 is the mount point.
const SCRIPT = `
status=0
for rel in "$@"; do
  if mount --no-canonicalize --rbind "/proc/self/fd/3/$rel" "/sys/$rel"; then
    for m in $(awk -v t="/sys/$rel" '$5 == t || index($5, t "/") == 1 { print $5 }' /proc/self/mountinfo); do
      mount -o remount,bind,ro "$m" || { echo "cannot make $m read-only; unmounting /sys/$rel"; umount -l "/sys/$rel"; status=1; break; }
    done
  else
    status=1
  fi
done
exit $status
`;

/**
 * Bind `paths` from the host's sysfs (`base`) over /sys. Resolves with a
 * message when something could not be bound (those paths are then served
 * through the overlay, as before), undefined when all were.
 */
export function bindHostPaths(base: BaseDir, paths: readonly string[]): Promise<string | undefined> {
  if (paths.length === 0) return Promise.resolve(undefined);
  return new Promise(resolve => {
    const child = spawn('/bin/sh', ['-c', SCRIPT, 'mdevfs-host-binds', ...paths], { stdio: ['ignore', 'pipe', 'pipe', base.fd] });
    let out = '';
    child.stdout!.on('data', d => (out += d));
    child.stderr!.on('data', d => (out += d));
    child.on('error', e => resolve(`cannot run /bin/sh: ${e.message}`));
    child.on('close', code => resolve(code === 0 ? undefined : firstLine(out.trim()) || `exit ${code}`));
  });
}
