/**
 * The mounts of a run's private namespace, made with mount(8)/umount(8) as
 * child processes. Everything here is asynchronous on purpose: the caller is
 * the FUSE daemon itself, and a synchronous fs call into its own tree (which
 * is what /sys becomes) would deadlock it for good (docs/fuse.md#self-deadlock).
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { errorMessage } from '../core/errno.js';
import { UserError } from '../daemon/errors.js';
import { exec } from '../fuse/programs.js';
import type { NamespaceMount } from './options.js';

/** mdevctl 1.2.0's config root; mdevctl checks that these two script directories (callouts, notifiers) exist in it. */
export const MDEVCTL_ETC = '/etc/mdevctl.d';
export const MDEVCTL_ETC_DIRS = ['scripts.d/callouts', 'scripts.d/notifiers'];

/**
 * Where the FUSE tree is first mounted: a directory in a tmpfs that is put
 * over /sys inside the namespace (then covered by the tree itself), so a run
 * needs no directory on the host, and leaves none behind even if killed.
 */
export const STAGING_MOUNT: NamespaceMount = { what: 'a private staging tmpfs', kind: 'tmpfs', target: '/sys', options: 'mode=0755' };
export const STAGED_TREE_DIR = '/sys/mdevfs';

/** The FUSE tree bound over /sys. */
export function sysMount(treeDir: string): NamespaceMount {
  return { what: 'the mdevfs tree', kind: 'bind', source: treeDir, target: '/sys' };
}

/** An empty tmpfs over /etc/mdevctl.d with the directories mdevctl's self-check requires. */
export function scratchEtcMount(): NamespaceMount {
  return {
    what: 'the scratch mdevctl config',
    kind: 'tmpfs',
    target: MDEVCTL_ETC,
    options: 'mode=0755',
    dirs: MDEVCTL_ETC_DIRS,
    optional: true,
  };
}

/** The whole list, in mounting order: /sys, then /etc/mdevctl.d (unless kept), then the extras. */
export function planMounts(o: { treeDir: string; keepEtc: boolean; extra?: NamespaceMount[] }): NamespaceMount[] {
  return [sysMount(o.treeDir), ...(o.keepEtc ? [] : [scratchEtcMount()]), ...(o.extra ?? [])];
}

/** `mount` one entry; resolves false when an optional target is missing. Throws a UserError. */
export async function applyMount(m: NamespaceMount): Promise<boolean> {
  if (!path.isAbsolute(m.target)) throw new UserError(`${m.what}: target ${m.target} is not an absolute path`);
  try {
    const st = await fsp.stat(m.target);
    if (!st.isDirectory() && m.kind === 'tmpfs') throw new UserError(`${m.what}: ${m.target} is not a directory`);
  } catch (e) {
    if (e instanceof UserError) throw e;
    if (m.optional) return false;
    throw new UserError(`${m.what}: ${m.target} does not exist`);
  }
  let args: string[];
  if (m.kind === 'bind') {
    if (!m.source) throw new UserError(`${m.what}: a bind mount needs a source`);
    args = ['--bind', ...(m.options ? ['-o', m.options] : []), m.source, m.target];
  } else {
    args = ['-t', 'tmpfs', ...(m.options ? ['-o', m.options] : []), 'mdevfs-run', m.target];
  }
  const r = await exec('mount', args);
  if (!r.ok) throw new UserError(`cannot mount ${m.what} on ${m.target}: ${r.out}`);
  for (const d of m.dirs ?? []) {
    try {
      await fsp.mkdir(path.join(m.target, d), { recursive: true, mode: 0o755 });
    } catch (e) {
      throw new UserError(`${m.what}: cannot create ${path.join(m.target, d)}: ${errorMessage(e)}`);
    }
  }
  return true;
}

/** mount(8) with `args`; throws "cannot <what>: <mount's message>". */
export async function mountOrThrow(args: string[], what: string): Promise<void> {
  const r = await exec('mount', args);
  if (!r.ok) throw new Error(`cannot ${what}: ${r.out}`);
}

/** Lazy unmount (never throws; the namespace goes away with the run anyway). */
export async function removeMount(m: NamespaceMount): Promise<boolean> {
  return (await exec('umount', ['-l', m.target])).ok;
}
