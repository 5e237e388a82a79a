/**
 * `mdevfs run` in the process bin/mdevfs (or ./outer.ts) exec'd in the run's
 * namespaces: check them (./namespace.ts), run (./inner.ts), and exit with
 * the command's status. The exit is explicit: the FUSE sessions would keep
 * Node alive, and the kernel takes the namespace and its mounts along.
 */
import { errorMessage } from '../core/errno.js';
import { UserError } from '../daemon/errors.js';
import { stderrLine } from '../daemon/log.js';
import { runInner } from './inner.js';
import { enterRunNamespace } from './namespace.js';
import { EXIT_RUN_FAILED, type RunOptions } from './options.js';

export async function runAsDaemon(o: RunOptions): Promise<never> {
  const ns = enterRunNamespace();
  if (o.command.length === 0) throw new UserError('run: no command given (mdevfs run [options] -- <command> [args...])', EXIT_RUN_FAILED);
  let status: number;
  try {
    status = await runInner(o, ns);
  } catch (e) {
    if (e instanceof UserError) throw e;
    stderrLine(`mdevfs: internal error: ${errorMessage(e)}`);
    if (process.env.MDEVFS_DEBUG && e instanceof Error && e.stack) stderrLine(e.stack);
    status = EXIT_RUN_FAILED;
  }
  process.exit(status);
}
