/**
 * Where the daemon's own messages go: stderr, one line each, so stdout stays
 * the command's (`mount` prints its ready line there, `run` leaves it to the
 * client it runs).
 */
import { errorMessage } from '../core/errno.js';

export function stderrLine(line: string): void {
  process.stderr.write(line.endsWith('\n') ? line : line + '\n');
}

/**
 * Once a tree is mounted the daemon must not die from a stray exception (a
 * plugin's forgotten promise, say): clients would be left with a dead mount.
 * Log it instead, with the stack under --verbose.
 */
export function logStrayErrors(verbose: boolean | undefined): void {
  const internal = (e: unknown) => stderrLine(`mdevfs: internal error: ${verbose && e instanceof Error ? e.stack : errorMessage(e)}`);
  process.on('uncaughtException', internal);
  process.on('unhandledRejection', internal);
}
