/**
 * Entry point of the inner process of `mdevfs run`, started by the outer as
 * `unshare … -- node dist/run/inner-main.js <json RunOptions>`. Not a public
 * command. Exits with the command's status (see ./inner.ts).
 */
import { errorMessage } from '../core/errno.js';
import { stderrLine } from '../daemon/log.js';
import { InnerControl } from './control.js';
import { runInner } from './inner.js';
import { EXIT_RUN_FAILED, decodeRunOptions } from './options.js';

async function innerMain(): Promise<void> {
  let opts;
  try {
    opts = decodeRunOptions(process.argv[2] ?? '');
  } catch (e) {
    stderrLine(`mdevfs: internal error: bad run options: ${errorMessage(e)}`);
    process.exit(EXIT_RUN_FAILED);
  }
  if (process.pid !== 1) {
    stderrLine('mdevfs: internal error: the run helper must be PID 1 of its own pid namespace (start it through mdevfs run)');
    process.exit(EXIT_RUN_FAILED);
  }
  let status: number;
  try {
    status = await runInner(opts);
  } catch (e) {
    stderrLine(`mdevfs: internal error: ${errorMessage(e)}`);
    if (process.env.MDEVFS_DEBUG && e instanceof Error && e.stack) stderrLine(e.stack);
    status = EXIT_RUN_FAILED;
  }
  new InnerControl(opts.statusFd).exiting(status);
  process.exit(status);
}

void innerMain();
