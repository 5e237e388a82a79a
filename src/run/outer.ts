/**
 * The outside of `mdevfs run`, in the caller's namespaces: checks for root and
 * unshare(1), and starts
 *
 *   [setpriv --pdeathsig KILL --] unshare --mount --pid --fork --propagation private
 *     --mount-proc --kill-child [--net] -- node <inner-main.js> <json RunOptions>

 * (--net with the udev broadcast, the default: the command then has only its
 * own loopback, and the broadcast reaches no listener outside the run)
 *
 * with stdin and stdout inherited (stderr: see the spawn below). The inner
 * (./inner.ts) is PID 1 of the new pid namespace. Process chain and who cleans up what:
 *
 * - SIGTERM, and SIGINT/SIGHUP that did not come from our terminal, are
 *   relayed to the inner over the control channel (./control.ts; unshare
 *   blocks them itself), which passes them to the command and tears down
 *   when it exits. A terminal's Ctrl-C reaches the command directly.
 * - The inner dies (even SIGKILL): the kernel kills the rest of its pid
 *   namespace, unshare exits, the namespace and its mounts are gone.
 * - unshare dies: --kill-child SIGKILLs the inner, as above.
 * - This process dies (even SIGKILL): setpriv's parent-death signal SIGKILLs
 *   unshare, as above. The run creates nothing on the host's file systems.
 *
 * The exit status is the command's (128+signo if a signal ended it); 125 is
 * mdevfs run's own failure, 126/127 a command that cannot be executed/found.
 */
import { spawn } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { UserError } from '../daemon/errors.js';
import { stderrLine } from '../daemon/log.js';
import { which } from '../fuse/programs.js';
import { OuterControl, RELAYED_SIGNALS, type RelayedSignal } from './control.js';
import { EXIT_RUN_FAILED, encodeRunOptions, signalStatus, type RunOptions } from './options.js';

export type OuterOptions = RunOptions;

/** The inner's entry script, next to this file (dist/run/inner-main.js, or .ts under tsx). */
export function innerMainPath(): string {
  const self = fileURLToPath(import.meta.url);
  return path.join(path.dirname(self), `inner-main${path.extname(self)}`);
}

/** The unshare(1) argument list that makes the run's namespace (exported for tests and docs). */
export const UNSHARE_ARGS = ['--mount', '--pid', '--fork', '--propagation', 'private', '--mount-proc', '--kill-child'];
/** Added for a udev broadcast: a network namespace of the run's own, so no host listener hears it. */
export const UNSHARE_NET_ARG = '--net';

/** Whether this process is in the foreground process group of its controlling terminal. */
async function inTerminalForeground(): Promise<boolean> {
  try {
    const stat = await fsp.readFile('/proc/self/stat', 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const [pgrp, ttyNr, tpgid] = [Number(f[2]), Number(f[4]), Number(f[5])];
    return ttyNr !== 0 && tpgid > 0 && pgrp === tpgid;
  } catch {
    return false;
  }
}

/**
 * Copy the child's stderr to ours, line by line, without unshare's bogus
 * complaint when its child dies of SIGKILL (util-linux 2.38 tries to unblock
 * SIGKILL: "unshare: sigprocmask unblock failed: Invalid argument").
 */
function relayStderr(stream: Readable | null): { childKilled: boolean } {
  const state = { childKilled: false };
  if (!stream) return state;
  let partial = '';
  const emit = (line: string) => {
    if (/^unshare: sigprocmask unblock failed/.test(line)) {
      state.childKilled = true; // and this is the only way to learn it: unshare then exits 1
      return;
    }
    process.stderr.write(line);
  };
  stream.setEncoding('utf8');
  stream.on('data', (d: string) => {
    const text = partial + d;
    const lines = text.split(/(?<=\n)/);
    partial = lines[lines.length - 1]!.endsWith('\n') ? '' : lines.pop()!;
    for (const l of lines) emit(l);
  });
  stream.on('end', () => {
    if (partial) emit(partial);
  });
  stream.on('error', () => {});
  return state;
}

/** Start the run and resolve with the exit status for `mdevfs run` (UserError for its own failures). */
export async function runOuter(o: OuterOptions): Promise<number> {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    throw new UserError(
      'run needs root: it mounts the tree over /sys in a private mount namespace (try: sudo mdevfs run ...)',
      EXIT_RUN_FAILED,
    );
  }
  if (o.command.length === 0) throw new UserError('run: no command given (mdevfs run [options] -- <command> [args...])', EXIT_RUN_FAILED);
  const unshare = await which('unshare');
  if (!unshare) throw new UserError('unshare not found (install util-linux)', EXIT_RUN_FAILED);
  const setpriv = await which('setpriv');

  const opts: RunOptions = {
    ...o,
    config: o.config.map(f => path.resolve(f)),
    statusFd: 3,
    stderrFd: 4,
    ...(o.udevBroadcast ? { callerNetns: await fsp.readlink('/proc/self/ns/net') } : {}),
  };
  const argv = [
    ...(setpriv ? [setpriv, '--pdeathsig', 'KILL', '--'] : []),
    unshare,
    ...UNSHARE_ARGS,
    ...(o.udevBroadcast ? [UNSHARE_NET_ARG] : []),
    '--',
    // Our node flags (e.g. tsx's loader when run from source), but not a second debugger on the same port.
    process.execPath,
    ...process.execArgv.filter(a => !a.startsWith('--inspect')),
    innerMainPath(),
    encodeRunOptions(opts),
  ];
  if (o.verbose && !setpriv) stderrLine('mdevfs: setpriv not found: if mdevfs run itself is killed, the command keeps running');

  let control: OuterControl | undefined;
  const onSignal = (sig: RelayedSignal) => {
    void (async () => {
      // A terminal's SIGINT/SIGHUP went to our whole process group, the
      // command included: relaying it would make it two.
      if (sig !== 'SIGTERM' && (await inTerminalForeground())) return;
      control?.relay(sig);
    })();
  };
  const handlers = RELAYED_SIGNALS.map(sig => {
    const h = () => onSignal(sig);
    process.on(sig, h);
    return [sig, h] as const;
  });

  try {
    // fd 2 is a pipe we relay (unshare's own messages, filtered, and the
    // inner's), fd 3 the control channel, fd 4 our real stderr for the command.
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['inherit', 'inherit', 'pipe', 'pipe', 2] });
    control = new OuterControl(child.stdio[3] as (Readable & Writable) | null);
    const relay = relayStderr(child.stderr);
    const result = await new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>(resolve => {
      child.on('error', error => resolve({ code: null, signal: null, error }));
      // 'close', not 'exit': everything on fds 2 and 3 must have been read first.
      child.on('close', (code, signal) => resolve({ code, signal }));
    });
    if (result.error) throw new UserError(`cannot start ${argv[0]}: ${result.error.message}`, EXIT_RUN_FAILED);
    if (control.exitStatus !== undefined) return control.exitStatus;
    if (result.signal) return signalStatus(result.signal);
    const code = result.code ?? EXIT_RUN_FAILED;
    if (relay.childKilled) {
      stderrLine('mdevfs: the mdevfs daemon of this run was killed (SIGKILL); the command and its namespace went with it');
      return signalStatus('SIGKILL');
    }
    if (!control.started) {
      // unshare (or setpriv, or node) failed before the inner could run: say so, don't pass its status off as the command's.
      stderrLine(`mdevfs: could not start the run's namespace (${path.basename(unshare)} exited with status ${code})`);
      return EXIT_RUN_FAILED;
    }
    // The inner never said goodbye: it died, and its pid namespace (the command included) with it.
    stderrLine('mdevfs: the mdevfs daemon of this run died; the command and its namespace went with it');
    return code >= 128 ? code : EXIT_RUN_FAILED;
  } finally {
    for (const [sig, h] of handlers) process.off(sig, h);
  }
}
