/**
 * `mdevfs run` started without bin/mdevfs's shell part (`node bin/mdevfs run`,
 * a wrapper that runs Node itself): this process starts the run's daemon as
 * the shell part would (./namespace.ts),
 *
 *   [setpriv --pdeathsig KILL --] unshare --mount --propagation private [--net] --
 *     node <this script> run <the same arguments>     (fds 8, 9: our namespaces)
 *
 * and stands in for it: stdio inherited, SIGTERM (and a SIGINT or SIGHUP that
 * did not come from our terminal) passed on, its exit status ours (128+signo
 * if a signal ended it). If this process dies, even of SIGKILL, setpriv's
 * parent-death signal takes the daemon, and with it the run, along.
 * The checks with a clear message (root, unshare) are made here, before
 * anything starts.
 */
import { spawn } from 'node:child_process';
import { openSync } from 'node:fs';
import { UserError } from '../daemon/errors.js';
import { which } from '../fuse/programs.js';
import { CALLER_MNT_FD, CALLER_NET_FD, RUN_NS_ENV, unshareArgs } from './namespace.js';
import { EXIT_RUN_FAILED, signalStatus } from './options.js';
import { RELAYED_SIGNALS, inTerminalForeground } from './signals.js';

/** The checks every start of a run makes first (UserError, status 125). */
export async function checkRunnable(command: readonly string[]): Promise<string> {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    throw new UserError(
      'run needs root: it mounts the tree over /sys in a private mount namespace (try: sudo mdevfs run ...)',
      EXIT_RUN_FAILED,
    );
  }
  if (command.length === 0) throw new UserError('run: no command given (mdevfs run [options] -- <command> [args...])', EXIT_RUN_FAILED);
  const unshare = which('unshare');
  if (!unshare) throw new UserError('unshare not found (install util-linux)', EXIT_RUN_FAILED);
  return unshare;
}

/** Start the run's daemon with `args` (run's own arguments); resolves with its exit status. */
export async function runOuter(args: readonly string[], o: { command: readonly string[]; privateNet: boolean }): Promise<number> {
  const unshare = await checkRunnable(o.command);
  const setpriv = which('setpriv');
  const argv = [
    ...(setpriv ? [setpriv, '--pdeathsig', 'KILL', '--'] : []),
    unshare,
    ...unshareArgs(o.privateNet),
    '--',
    // Our node flags (e.g. tsx's loader when run from source), but not a second debugger on the same port.
    process.execPath,
    ...process.execArgv.filter(a => !a.startsWith('--inspect')),
    process.argv[1]!,
    'run',
    ...args,
  ];
  // stdio[n] is the child's fd n: ours 0-2, nothing at 3-7, the namespaces at 8 and 9.
  const stdio: Array<'inherit' | 'ignore' | number> = ['inherit', 'inherit', 'inherit'];
  while (stdio.length <= Math.max(CALLER_MNT_FD, CALLER_NET_FD)) stdio.push('ignore');
  stdio[CALLER_MNT_FD] = openSync('/proc/self/ns/mnt', 'r');
  stdio[CALLER_NET_FD] = openSync('/proc/self/ns/net', 'r');
  const child = spawn(argv[0]!, argv.slice(1), { stdio, env: { ...process.env, [RUN_NS_ENV]: '1' } });
  const handlers = RELAYED_SIGNALS.map(sig => {
    const h = () =>
      void (async () => {
        if (sig !== 'SIGTERM' && (await inTerminalForeground())) return; // the daemon has it too
        try {
          child.kill(sig);
        } catch {
          /* gone */
        }
      })();
    process.on(sig, h);
    return [sig, h] as const;
  });
  try {
    const result = await new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>(resolve => {
      child.on('error', error => resolve({ code: null, signal: null, error }));
      child.on('exit', (code, signal) => resolve({ code, signal }));
    });
    if (result.error) throw new UserError(`cannot start ${argv[0]}: ${result.error.message}`, EXIT_RUN_FAILED);
    return result.code ?? signalStatus(result.signal ?? 'SIGKILL');
  } finally {
    for (const [sig, h] of handlers) process.off(sig, h);
  }
}
