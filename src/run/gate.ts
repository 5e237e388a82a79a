/**
 * The command's side of a run: forked before the tree is mounted (so it
 * inherits none of the daemon's descriptors: libfuse opens /dev/fuse
 * without O_CLOEXEC), as
 *
 *   [setpriv --pdeathsig KILL --] unshare --pid --fork --kill-child --mount-proc
 *     --propagation slave -- /bin/sh -c GATE mdevfs <command...>
 *
 * in the daemon's network namespace. The shell is PID 1 of a pid namespace
 * of its own, with its own /proc, in a mount namespace that is a slave of the
 * daemon's (whose mounts are shared by then, ./inner.ts): every mount the
 * daemon makes later reaches the command. It waits on fd 3 for "go" (EOF:
 * exit 125 unseen), then runs the command as its child and exits with its
 * status. Not exec'd: an init gets no signal it has no handler for
 * (kernel/signal.c sig_task_ignored(), SIGNAL_UNKILLABLE), and the command
 * must keep the default ones; the shell's own traps (`:`) keep a terminal's
 * Ctrl-C from ending it, and are reset for the command by exec. The shell's
 * stderr is /dev/null (its "Terminated" notes are not the command's); the
 * command gets the real one, passed as fd 4.
 *
 * Cleanup: when the shell exits, the kernel kills whatever the command left
 * in the pid namespace (zap_pid_ns_processes()). When the daemon dies, even
 * of SIGKILL, setpriv's parent-death signal kills unshare, whose
 * --kill-child kills the shell, and the pid namespace goes the same way.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import type { Writable } from 'node:stream';
import { EXIT_NOT_FOUND, EXIT_RUN_FAILED, signalStatus } from './options.js';

const GATE_SCRIPT = [
  'read _ <&3 || exit ' + EXIT_RUN_FAILED,
  'exec 3<&-',
  'trap : INT QUIT HUP TERM',
  `command -v -- "$1" >/dev/null 2>&1 || { printf '%s\\n' "mdevfs: $1: command not found" >&4; exit ${EXIT_NOT_FOUND}; }`,
  // A subshell, so the redirections are the command's alone.
  '( exec "$@" 2>&4 4>&- )',
].join('\n');

export interface Gate {
  child: ChildProcess;
  /** Resolves with the command's exit status (128+signo for a signal) once the gate has exited. */
  exited: Promise<number>;
  /** Let the command run. */
  go(): void;
  /** Never run it: the gate exits 125. */
  cancel(): void;
  /** Send `sig` to the command (the shell's child), if it runs. */
  signal(sig: NodeJS.Signals): Promise<void>;
  /** SIGKILL the whole pid namespace, the command and all it left. */
  kill(): void;
}

async function childrenOf(pid: number): Promise<number[]> {
  const text = await fsp.readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '');
  return text.split(' ').filter(Boolean).map(Number);
}

/** Start the gate. `unshare`/`setpriv` are the programs' paths (setpriv may be missing: no parent-death signal then). */
export function startGate(command: readonly string[], env: NodeJS.ProcessEnv, unshare: string, setpriv: string | undefined): Gate {
  const argv = [
    ...(setpriv ? [setpriv, '--pdeathsig', 'KILL', '--'] : []),
    unshare,
    '--pid',
    '--fork',
    '--kill-child',
    '--mount-proc',
    '--propagation',
    'slave',
    '--',
    '/bin/sh',
    '-c',
    GATE_SCRIPT,
    'mdevfs',
    ...command,
  ];
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['inherit', 'inherit', 'ignore', 'pipe', 2], env });
  const ctl = child.stdio[3] as Writable | null;
  ctl?.on('error', () => {
    /* the gate is gone; its exit says why */
  });
  const exited = new Promise<number>(resolve => {
    child.on('error', () => resolve(EXIT_RUN_FAILED));
    child.on('exit', (code, signal) => resolve(code ?? (signal ? signalStatus(signal) : EXIT_RUN_FAILED)));
  });
  return {
    child,
    exited,
    go: () => ctl?.end('go\n'),
    cancel: () => ctl?.destroy(),
    signal: async sig => {
      // unshare → the shell (PID 1 inside) → the command.
      if (child.pid === undefined) return;
      for (const init of await childrenOf(child.pid)) {
        for (const pid of await childrenOf(init)) {
          try {
            process.kill(pid, sig);
          } catch {
            /* gone */
          }
        }
      }
    },
    kill: () => {
      try {
        child.kill('SIGKILL'); // unshare; --kill-child takes PID 1, and the namespace, along
      } catch {
        /* gone */
      }
    },
  };
}
