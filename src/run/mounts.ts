/**
 * The mounts of a run's private namespace: which, in what order, and the
 * mount(8) steps that make them (run in batches by ./script.ts). Nothing is
 * unmounted: the namespace, and every mount in it, goes when the run's
 * daemon exits. Asynchronous on purpose: the caller is the FUSE daemon
 * itself, and a synchronous fs call into its own tree (which is what /sys
 * becomes) would deadlock it for good (docs/fuse.md#self-deadlock).
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { UserError } from '../daemon/errors.js';
import type { NamespaceMount } from './options.js';
import type { ScriptStep } from './script.js';

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

/** The FUSE tree bound over /sys, with the host's subtrees bound into it (./host-binds.ts). */
export function sysMount(treeDir: string): NamespaceMount {
  return { what: 'the mdevfs tree', kind: 'rbind', source: treeDir, target: '/sys' };
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

/**
 * Check `m`'s target before its batch (./script.ts) runs: resolves false
 * when an optional target is missing; throws a UserError for one that
 * cannot be used.
 */
export async function checkTarget(m: NamespaceMount): Promise<boolean> {
  if (!path.isAbsolute(m.target)) throw new UserError(`${m.what}: target ${m.target} is not an absolute path`);
  if (m.kind !== 'tmpfs' && !m.source) throw new UserError(`${m.what}: a bind mount needs a source`);
  try {
    const st = await fsp.stat(m.target);
    if (!st.isDirectory() && m.kind === 'tmpfs') throw new UserError(`${m.what}: ${m.target} is not a directory`);
  } catch (e) {
    if (e instanceof UserError) throw e;
    if (m.optional) return false;
    throw new UserError(`${m.what}: ${m.target} does not exist`);
  }
  return true;
}

/** The steps that make `m` (its target checked): the mount, then the directories in it. */
export function mountSteps(m: NamespaceMount): ScriptStep[] {
  const opts = m.options ? ['-o', m.options] : [];
  // --no-canonicalize: the paths are absolute already, and the tree's would cost a round trip to this daemon.
  const argv =
    m.kind !== 'tmpfs'
      ? ['mount', '--no-canonicalize', `--${m.kind}`, ...opts, m.source!, m.target]
      : ['mount', '--no-canonicalize', '-t', 'tmpfs', ...opts, 'mdevfs-run', m.target];
  const steps: ScriptStep[] = [{ argv, what: `mount ${m.what} on ${m.target}` }];
  const dirs = (m.dirs ?? []).map(d => path.join(m.target, d));
  if (dirs.length > 0) steps.push({ argv: ['mkdir', '-p', ...dirs], what: `create ${dirs.join(' ')}` });
  return steps;
}
