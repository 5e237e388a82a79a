/**
 * What `mdevfs run`'s daemon (./inner.ts) is asked to do, from its command
 * line (src/cli/commands/run.ts).
 */
import { constants as osConstants } from 'node:os';
import type { Profile } from '../core/api.js';
import type { EngineName } from '../fuse/engines.js';

/**
 * One extra mount made inside the run's namespace after the tree is at /sys
 * (and the scratch /etc/mdevctl.d, unless kept). This is the seam for later
 * additions: add an entry to `RunOptions.mounts`; the daemon mounts them in
 * order, and they go with the run's namespace. Nothing here is ever visible
 * outside the run.
 */
export interface NamespaceMount {
  /** For messages, e.g. "scratch mdevctl config". */
  what: string;
  /** An absolute path inside the namespace; it must already exist (nothing is created on the host). */
  target: string;
  /** 'bind': `mount --bind <source> <target>` ('rbind': with the mounts below it); 'tmpfs': a fresh tmpfs. */
  kind: 'bind' | 'rbind' | 'tmpfs';
  /** For 'bind' and 'rbind': an absolute path. */
  source?: string;
  /** mount -o options, e.g. 'mode=0755' for a tmpfs. */
  options?: string;
  /** Directories to create inside the new mount (relative to target), e.g. 'scripts.d/callouts'. */
  dirs?: string[];
  /** Skip the mount (with a note under --verbose) when the target does not exist, instead of failing. */
  optional?: boolean;
}

/** The daemon's whole input. */
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
   * daemon then runs in a network namespace of its own (unshare --net, see
   * ./namespace.ts), and refuses to broadcast unless it does.
   */
  udevBroadcast?: boolean;
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
