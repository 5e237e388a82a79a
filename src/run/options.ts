/**
 * What `mdevfs run` hands from the outer process (the CLI, in the host's
 * namespaces) to the inner one (PID 1 of the private mount + pid namespace):
 * plain JSON, passed as one argument.
 */
import { constants as osConstants } from 'node:os';
import type { Profile } from '../core/api.js';
import type { EngineName } from '../fuse/engines.js';

/**
 * One extra mount made inside the run's namespace after the tree is at /sys
 * (and the scratch /etc/mdevctl.d, unless kept). This is the seam for later
 * additions such as VFIO device files at /dev/vfio: add an entry to
 * `RunOptions.mounts`; the inner mounts them in order and unmounts them in
 * reverse before it exits. Nothing here is ever visible outside the run.
 */
export interface NamespaceMount {
  /** For messages, e.g. "scratch mdevctl config". */
  what: string;
  /** An absolute path inside the namespace; it must already exist (nothing is created on the host). */
  target: string;
  /** 'bind': `mount --bind <source> <target>`; 'tmpfs': a fresh tmpfs. */
  kind: 'bind' | 'tmpfs';
  /** For 'bind': an absolute path. */
  source?: string;
  /** mount -o options, e.g. 'mode=0755' for a tmpfs. */
  options?: string;
  /** Directories to create inside the new mount (relative to target), e.g. 'scripts.d/callouts'. */
  dirs?: string[];
  /** Skip the mount (with a note under --verbose) when the target does not exist, instead of failing. */
  optional?: boolean;
}

/** The inner's whole input. */
export interface RunOptions {
  /** Plugin specs as for `mount --driver` (resolved against `cwd`). */
  driver: string[];
  /** Declarative config files (`loadConfigFile`). */
  config: string[];
  profile: Profile;
  verbose: boolean;
  callTimeout: number;
  allowOther: boolean;
  /** The FUSE engine (mount --engine); absent: the default. */
  engine?: EngineName;
  /** The emulated tree alone as /sys; by default it is merged over the host's (docs/overlay.md). */
  bare?: boolean;
  /** Leave the host's /etc/mdevctl.d visible (and writable) inside the run. */
  keepEtc: boolean;
  /** Extra mounts after the standard ones (see NamespaceMount). */
  mounts: NamespaceMount[];
  /** Write every uevent to this file (an absolute path), one JSON line each (mount --uevents). */
  uevents?: string;
  /** A scenario file (an absolute path) to play once the tree is mounted (docs/control.md). */
  scenario?: string;
  /**
   * Emulate udev as user space sees it (./run-udev.ts): a private /run/udev
   * with `control` and the database, and SYSTEMD_DEVICE_VERIFY_SYSFS=0 in the
   * command's environment. Absent: off.
   */
  udev?: boolean;
  /**
   * Also multicast every uevent on the udev netlink group (src/udev). The
   * outer then adds a network namespace (unshare --net), and the inner
   * refuses to broadcast unless its network namespace differs from `callerNetns`.
   */
  udevBroadcast?: boolean;
  /** The outer's /proc/self/ns/net link ("net:[4026531840]"). */
  callerNetns?: string;
  /**
   * The status channel to the outer (fd 3): "R" when the command starts,
   * "E<status>\n" just before the inner exits. Without "R" the namespace never
   * came up; without "E" the inner died (killed) instead of finishing.
   */
  statusFd?: number;
  /**
   * The caller's real stderr (fd 4), for the command. The inner's own fd 2
   * is a pipe the outer relays, so unshare's messages can be filtered.
   */
  stderrFd?: number;
  /** The command and its arguments. */
  command: string[];
}

/** Exit status of `mdevfs run`'s own failures (setup, not the command), as env(1)/timeout(1) do. */
export const EXIT_RUN_FAILED = 125;
/** The command exists but could not be executed. */
export const EXIT_CANNOT_EXEC = 126;
/** The command was not found. */
export const EXIT_NOT_FOUND = 127;

/** Exit status for a process that died of a signal: 128 + its number. */
export function signalStatus(signal: NodeJS.Signals | number): number {
  if (typeof signal === 'number') return 128 + signal;
  const n = (osConstants.signals as Record<string, number | undefined>)[signal];
  return 128 + (n ?? 0);
}

/** The environment variable systemd's sd-device needs to accept a /sys that is not sysfs (sd-device.c device_set_syspath()). */
export const VERIFY_SYSFS_ENV = { SYSTEMD_DEVICE_VERIFY_SYSFS: '0' } as const;

export function encodeRunOptions(o: RunOptions): string {
  return JSON.stringify(o);
}

export function decodeRunOptions(text: string): RunOptions {
  const o = JSON.parse(text) as RunOptions;
  if (!o || typeof o !== 'object' || !Array.isArray(o.command) || o.command.length === 0) {
    throw new Error('malformed run options');
  }
  return o;
}
