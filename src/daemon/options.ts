/**
 * What the daemon needs to compose and serve a tree. The CLI's `mount` fills
 * it from its flags; `run`'s inner process from the RunOptions the outer
 * handed it (src/run/options.ts).
 */
import type { Profile } from '../core/api.js';
import type { EngineName } from '../fuse/engines.js';
import type { BaseDir } from '../overlay/index.js';
import type { Logger } from './log.js';

export interface ServeOptions {
  /** Driver specs to load when no plugins are passed to serveTree (empty: the samples, unless `config` is given). */
  driver?: string[];
  /** Declarative config files (JSON) to load when no plugins are passed to serveTree, after the drivers. */
  config?: string[];
  profile: Profile;
  /** Debug logging, when no `logger` is given. */
  verbose?: boolean;
  /** Where the daemon's messages go (default: plain lines on stderr, debug with `verbose`). */
  logger?: Logger;
  /** The mount's source in /proc/self/mountinfo (default `mdevfs`; `mdevfs mount` adds its pid for `mdevfs umount`). */
  fsname?: string;
  allowOther?: boolean;
  /** The FUSE engine (default: defaultEngine(), src/fuse/mount.ts). */
  engine?: EngineName;
  /** Unmount when the daemon dies, even by SIGKILL (default true). */
  autoUnmount?: boolean;
  /** Bound on every plugin callback and attribute show/store, ms. */
  callTimeout: number;
  /** Serve the VFIO device files (<vfioDir>/<group>) on this second mount point. */
  vfioDir?: string;
  /** Write every uevent to this file, one JSON line each. */
  uevents?: string;
  /**
   * Merge the tree over this directory (docs/overlay.md): a path, opened at
   * start, or a base the caller opened already (`mdevfs run`: the host's /sys,
   * opened before the tree covers it). Absent: the bare tree.
   */
  overlay?: string | BaseDir;
  /**
   * Multicast every uevent as udevd would, on the udev netlink group of this
   * process's network namespace (src/udev). Only `mdevfs run` sets it, from
   * inside its private network namespace: elsewhere the host's listeners would hear it.
   */
  udevBroadcast?: boolean;
  /** Keep udevd's database in this directory (/run/udev/data inside `mdevfs run`). */
  udevDatabase?: string;
  /**
   * Serve the control socket (docs/control.md) at this path, or at the path
   * this function derives from the mount point (`mdevfs mount`).
   */
  controlSocket?: string | ((mountpoint: string) => string);
  /** Play this scenario file (./scenario.ts) once the tree is mounted. */
  scenario?: string;
}
