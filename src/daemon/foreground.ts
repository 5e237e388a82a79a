/**
 * A tree served in the foreground, as `mdevfs mount` does: the daemon stays
 * up until SIGINT/SIGTERM/SIGHUP (or the mount vanishing), then unmounts,
 * shuts the plugins down and exits.
 */
import { unmountOnSignals } from '../fuse/mount.js';
import { logStrayErrors, stderrLine } from './log.js';
import type { ServeOptions } from './options.js';
import { serveTree, type Serving } from './serve-tree.js';

export async function serveInForeground(dir: string, opts: ServeOptions): Promise<Serving> {
  const serving = await serveTree(dir, opts);
  logStrayErrors(opts.verbose);
  unmountOnSignals(serving.mounted, { log: stderrLine, cleanup: serving.shutdown });
  if (serving.recoveredStale) stderrLine(`mdevfs: recovered the stale mount at ${serving.mounted.mountpoint}`);
  return serving;
}
