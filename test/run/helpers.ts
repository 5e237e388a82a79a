// Helpers for the `mdevfs run` tests: start `bin/mdevfs run` in its own
// process group (killed at teardown, whatever happened), run a list of steps
// inside one namespace through a small python3 driver, and look at what is
// left on the host afterwards.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { BIN, REPO, run, type Teardownable } from '../helpers/daemon.js';
import { PYTHON, waitFor } from '../helpers/util.js';

export { REPO };
export const NVIDIA = path.join(REPO, 'examples/nvidia-vgpu.ts');

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Wall time, ms. */
  ms: number;
}

export interface Running {
  proc: ChildProcess;
  /** Resolves when the outer `mdevfs run` has exited and its pipes are drained. */
  done: Promise<RunResult>;
  readonly stdout: string;
  readonly stderr: string;
}

/** All pids in our process group that are still alive at teardown get SIGKILL. */
function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    /* gone */
  }
}

/**
 * Start `bin/mdevfs run <args>` (args include `--` and the command) as a user
 * does: its shell part execs Node in the run's namespaces, so the pid is the
 * run's daemon. `viaNode`: `node bin/mdevfs run`, which starts that daemon
 * as a child (src/run/outer.ts).
 */
export function startRun(
  t: Teardownable,
  args: string[],
  opts: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number; viaNode?: boolean } = {},
): Running {
  return startGroup(t, [...(opts.viaNode ? [process.execPath] : []), BIN, 'run', ...args], opts);
}

/** Start any argv in its own process group, SIGKILLed (the whole group) at teardown or after `timeoutMs`. */
export function startGroup(
  t: Teardownable,
  argv: string[],
  opts: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Running {
  const t0 = Date.now();
  const proc = spawn(argv[0]!, argv.slice(1), {
    cwd: REPO,
    env: opts.env ?? process.env,
    stdio: ['pipe', 'pipe', 'pipe'],
    detached: true, // its own process group, so teardown can kill everything it started
  });
  let stdout = '';
  let stderr = '';
  proc.stdout!.on('data', d => {
    stdout += d;
  });
  proc.stderr!.on('data', d => {
    stderr += d;
  });
  proc.stdin!.on('error', () => {});
  proc.stdin!.end(opts.input ?? '');
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const timer = setTimeout(() => killGroup(proc.pid), timeoutMs);
  const done = new Promise<RunResult>(resolve => {
    proc.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: Date.now() - t0 });
    });
  });
  t.teardown(async () => {
    killGroup(proc.pid);
    clearTimeout(timer);
    await done;
  });
  return {
    proc,
    done,
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
  };
}

/** Run to completion. */
export function mdevfsRun(
  t: Teardownable,
  args: string[],
  opts: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<RunResult> {
  return startRun(t, args, opts).done;
}

// ---------------------------------------------------------------------------
// Many commands in one namespace: a python3 driver runs each step in turn and
// prints one JSON document with every step's status, stdout and stderr.

/** A step; with `timeout` (seconds) a step still running then is killed and reports code 124, as timeout(1). */
export type Step = ({ sh: string } | { argv: string[] }) & { input?: string; timeout?: number };

export interface StepResult {
  code: number;
  out: string;
  err: string;
}

const STEPS_PY = String.raw`
import json, subprocess, sys
res = []
for st in json.loads(sys.argv[1]):
    argv = ['/bin/sh', '-c', st['sh']] if 'sh' in st else st['argv']
    try:
        p = subprocess.run(argv, input=st.get('input', '').encode(), capture_output=True, timeout=st.get('timeout'))
        res.append({'code': p.returncode, 'out': p.stdout.decode('utf-8', 'replace'), 'err': p.stderr.decode('utf-8', 'replace')})
    except subprocess.TimeoutExpired as e:
        dec = lambda b: (b or b'').decode('utf-8', 'replace')
        res.append({'code': 124, 'out': dec(e.stdout), 'err': dec(e.stderr) + 'timed out after %ss' % st['timeout']})
sys.stdout.write(json.dumps(res))
`;

/** The argv that runs `steps` in order and prints their results as JSON (what runSteps runs inside the namespace). */
export function stepsCommand(steps: Step[]): string[] {
  return [PYTHON, '-c', STEPS_PY, JSON.stringify(steps)];
}

/** Parse what stepsCommand printed. */
export function parseSteps(r: RunResult): StepResult[] {
  if (r.code !== 0) throw new Error(`mdevfs run failed (${r.code ?? r.signal}): ${r.stderr}`);
  try {
    return JSON.parse(r.stdout) as StepResult[];
  } catch {
    throw new Error(`unparsable step output: ${r.stdout}\nstderr: ${r.stderr}`);
  }
}

/** Run `steps` in order inside one `mdevfs run [runArgs] -- python3 …`. */
export async function runSteps(t: Teardownable, steps: Step[], runArgs: string[] = []): Promise<{ results: StepResult[]; run: RunResult }> {
  const r = await mdevfsRun(t, [...runArgs, '--', PYTHON, '-c', STEPS_PY, JSON.stringify(steps)]);
  if (r.code !== 0) throw new Error(`mdevfs run failed (${r.code ?? r.signal}): ${r.stderr}`);
  let results: StepResult[];
  try {
    results = JSON.parse(r.stdout) as StepResult[];
  } catch {
    throw new Error(`unparsable step output: ${r.stdout}\nstderr: ${r.stderr}`);
  }
  return { results, run: r };
}

/** `mdevctl <args>` as a step. */
export const mdevctl = (...args: string[]): Step => ({ argv: ['mdevctl', ...args] });

// ---------------------------------------------------------------------------
// The host after a run.

/** Every path under `dir` with its type and (for files) a content hash; '' if dir is missing. */
export async function snapshot(dir: string): Promise<string> {
  const lines: string[] = [];
  const walk = async (p: string): Promise<void> => {
    let st;
    try {
      st = await fsp.lstat(p);
    } catch {
      return;
    }
    const rel = path.relative(dir, p) || '.';
    if (st.isDirectory()) {
      lines.push(`d ${rel} ${(st.mode & 0o7777).toString(8)} ${st.mtimeMs}`);
      for (const e of (await fsp.readdir(p)).sort()) await walk(path.join(p, e));
    } else if (st.isSymbolicLink()) {
      lines.push(`l ${rel} -> ${await fsp.readlink(p)}`);
    } else {
      const hash = createHash('sha256')
        .update(await fsp.readFile(p))
        .digest('hex');
      lines.push(`f ${rel} ${(st.mode & 0o7777).toString(8)} ${st.mtimeMs} ${hash}`);
    }
  };
  await walk(dir);
  return lines.join('\n');
}

/**
 * Mounts of a run that would have leaked into the test's (the host's) mount
 * namespace: fuse.mdevfs or the run's tmpfs ("mdevfs-run") at /sys, under it,
 * or at /etc/mdevctl.d. Other mdevfs mounts (other tests' /tmp dirs) are not ours.
 */
export async function hostMdevfsMounts(): Promise<string[]> {
  const text = await fsp.readFile('/proc/self/mountinfo', 'utf8');
  return text.split('\n').filter(l => {
    const [pre, post] = l.split(' - ');
    if (!pre || !post) return false;
    const mp = pre.split(' ')[4] ?? '';
    const [fstype, source] = post.split(' ');
    const ours = fstype === 'fuse.mdevfs' || source === 'mdevfs-run';
    return ours && (mp === '/sys' || mp.startsWith('/sys/') || mp === '/etc/mdevctl.d');
  });
}

/** /proc/<pid>/task/<pid>/children. */
export async function childrenOf(pid: number): Promise<number[]> {
  try {
    return (await fsp.readFile(`/proc/${pid}/task/${pid}/children`, 'utf8')).split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

export async function cmdline(pid: number): Promise<string[]> {
  try {
    return (await fsp.readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').filter(Boolean);
  } catch {
    return [];
  }
}

export async function alive(pid: number): Promise<boolean> {
  try {
    const stat = await fsp.readFile(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) Z /.test(stat); // a zombie is as good as gone
  } catch {
    return false;
  }
}

/** Every pid whose mount namespace is `ns` (e.g. "mnt:[4026532…]"). */
export async function pidsInMountNs(ns: string): Promise<number[]> {
  const out: number[] = [];
  for (const name of await fsp.readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if ((await fsp.readlink(`/proc/${name}/ns/mnt`)) === ns) out.push(Number(name));
    } catch {
      /* gone, or a kernel thread */
    }
  }
  return out;
}

/** The processes of a run (src/run/gate.ts). */
export interface RunChain {
  /** The run's daemon (node, in the run's mount namespace). */
  daemon: number;
  /** unshare --pid --fork, the daemon's child. */
  unshare: number;
  /** The shell that is PID 1 of the command's pid namespace. */
  init: number;
  command: number;
  /** The daemon's mount namespace ("mnt:[…]"), which the command shares. */
  mntNs: string;
}

/**
 * The process chain of a run under `top` (the daemon itself, or `node
 * bin/mdevfs run` above it): daemon → unshare → sh (PID 1 of the command's
 * pid namespace) → the command. Resolves once the command has exec'd (so
 * the namespace is fully set up): `sleepArg` matches `sleep <sleepArg>`, a
 * function any argv.
 */
export async function runChain(top: number, command: string | ((argv: string[]) => boolean), ms = 30_000): Promise<RunChain> {
  const match = typeof command === 'function' ? command : (argv: string[]) => !!argv[0]?.endsWith('sleep') && argv[1] === command;
  const chain = await waitFor(async () => {
    // Depth first: [..., daemon, unshare, init, command].
    const walk = async (pid: number, path: number[]): Promise<number[] | undefined> => {
      if (pid !== top && match(await cmdline(pid))) return [...path, pid];
      for (const c of await childrenOf(pid)) {
        const found = await walk(c, [...path, pid]);
        if (found) return found;
      }
      return undefined;
    };
    const found = await walk(top, []);
    if (!found || found.length < 4) return undefined;
    const [daemon, unshare, init, cmd] = found.slice(-4) as [number, number, number, number];
    return { daemon, unshare, init, command: cmd };
  }, ms);
  if (!chain) throw new Error(`no running command ${String(command)} under ${top}`);
  const mntNs = await fsp.readlink(`/proc/${chain.daemon}/ns/mnt`);
  return { ...chain, mntNs };
}

/** Unmount anything a broken run might have left (there should be nothing: the namespace owns the mounts). */
export async function unmountLeftovers(): Promise<void> {
  for (const line of await hostMdevfsMounts()) {
    const mp = line.split(' ')[4];
    if (mp) await run('umount', ['-l', mp], { timeoutMs: 10_000 });
  }
}
