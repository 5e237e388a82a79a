/**
 * Where a run's daemon runs: this Node process itself, exec'd by
 * `unshare --mount --propagation private [--net]` in a private mount (and,
 * for the udev broadcast, network) namespace. bin/mdevfs's shell part starts
 * it so for `mdevfs run` as root; ./outer.ts does the same for a run started
 * any other way. The starter sets MDEVFS_RUN_NS and passes its own
 * namespaces as fds 8 (mount) and 9 (network), so the daemon can tell that
 * its mounts cannot reach the caller's: nothing here trusts the variable alone.
 */
import { closeSync, readlinkSync } from 'node:fs';
import { UserError } from '../daemon/errors.js';
import { EXIT_RUN_FAILED } from './options.js';

export const RUN_NS_ENV = 'MDEVFS_RUN_NS';
export const CALLER_MNT_FD = 8;
export const CALLER_NET_FD = 9;

/** The arguments of unshare(1) that make the daemon's namespaces (bin/mdevfs has the same). */
export function unshareArgs(privateNet: boolean): string[] {
  return ['--mount', '--propagation', 'private', ...(privateNet ? ['--net'] : [])];
}

/** Whether this process was started as a run's daemon (see above); enterRunNamespace() checks it. */
export function startedAsRunDaemon(): boolean {
  return process.env[RUN_NS_ENV] !== undefined;
}

export interface RunNamespace {
  /** The caller's network namespace ("net:[4026531840]"). */
  callerNetns: string;
  /** Whether this process has a network namespace of its own. */
  privateNet: boolean;
}

const link = (p: string): string | undefined => {
  try {
    return readlinkSync(p);
  } catch {
    return undefined;
  }
};

/**
 * Check that this process's mount namespace is not the caller's (so no mount
 * of the run can land on the host's /sys), learn the network namespaces,
 * close the two fds and drop the variable (the command inherits neither).
 * Throws a UserError otherwise.
 */
export function enterRunNamespace(): RunNamespace {
  delete process.env[RUN_NS_ENV];
  const callerMnt = link(`/proc/self/fd/${CALLER_MNT_FD}`);
  const callerNet = link(`/proc/self/fd/${CALLER_NET_FD}`);
  // Only if they are what the starter passed: otherwise they may be Node's own.
  if (callerMnt?.startsWith('mnt:')) closeSync(CALLER_MNT_FD);
  if (callerNet?.startsWith('net:')) closeSync(CALLER_NET_FD);
  const ownMnt = link('/proc/self/ns/mnt');
  if (!callerMnt?.startsWith('mnt:') || !callerNet?.startsWith('net:') || !ownMnt || ownMnt === callerMnt) {
    throw new UserError(
      `internal error: ${RUN_NS_ENV} is set, but this is not a private mount namespace started by mdevfs run; not mounting anything`,
      EXIT_RUN_FAILED,
    );
  }
  return { callerNetns: callerNet, privateNet: link('/proc/self/ns/net') !== callerNet };
}
