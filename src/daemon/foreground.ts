/**
 * A tree served in the foreground, as `mdevfs mount` does: the daemon stays
 * up until SIGINT/SIGTERM/SIGHUP, the mount vanishing or (unless detached)
 * the processes that started it going away; then it unmounts, shuts the
 * plugins down and exits.
 */
import { unmountOnSignals } from '../fuse/mount.js';
import { logStrayErrors, verboseLogger } from './log.js';
import type { ServeOptions } from './options.js';
import { removePidfile, writePidfile } from './own-files.js';
import { watchAncestors } from './parent-watch.js';
import { serveTree, type Serving } from './serve-tree.js';

export interface ForegroundOptions extends ServeOptions {
  /** Stop when a process that started this one exits (not for a daemon meant to outlive its starter). */
  exitWithParent?: boolean;
  /** Write the daemon's pid here once mounted (a path from resolveOwnFile); removed on exit. */
  pidfile?: string;
}

/** The served tree, and how to stop it as a signal would (unmount, shut down, exit). */
export interface Foreground extends Serving {
  stop(why: string): Promise<never>;
}

export async function serveInForeground(dir: string, opts: ForegroundOptions): Promise<Foreground> {
  const logger = opts.logger ?? verboseLogger(opts.verbose);
  // Watched from the start: a starter killed while the plugins load counts too.
  let starterGone: number | undefined;
  let stop: ((why: string) => Promise<never>) | undefined;
  const starterWent = (pid: number): string => `the process that started mdevfs (pid ${pid}) went away`;
  if (opts.exitWithParent) {
    watchAncestors(pid => {
      starterGone = pid;
      if (stop) void stop(starterWent(pid));
    });
  }

  const serving = await serveTree(dir, { ...opts, logger });
  const pidfile = opts.pidfile;
  if (pidfile) {
    try {
      writePidfile(pidfile, process.pid);
    } catch (e) {
      await serving.mounted.unmount();
      await serving.shutdown();
      throw e;
    }
    process.on('exit', () => removePidfile(pidfile, process.pid));
  }
  logStrayErrors(logger);
  stop = unmountOnSignals(serving.mounted, { log: logger.info, cleanup: serving.shutdown });
  if (serving.recoveredStale) logger.warn(`mdevfs: recovered the stale mount at ${serving.mounted.mountpoint}`);
  if (starterGone !== undefined) void stop(starterWent(starterGone));
  return { ...serving, stop };
}
