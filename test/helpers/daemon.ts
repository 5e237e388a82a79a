// Start an mdevfs daemon (or any mounting child) on a fresh temporary mount
// point, wait for its ready line, and ALWAYS clean up in t.teardown: kill the
// child (SIGTERM, then SIGKILL), `fusermount -uz` the mount point, remove it.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO, isMounted } from './util.js';

export { REPO, isMounted };
export const BIN = path.join(REPO, 'bin/mdevfs');
export const FIXTURES = path.join(REPO, 'test/fixtures');

/** The subset of tap's Test this helper needs. */
export interface Teardownable {
  teardown(fn: () => unknown): void;
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

// Safety net for when t.teardown never runs (tap killed the test on a
// timeout, or it crashed): kill every live child and lazily unmount its
// mount point on the way out. Only this test process's own children.
const live = new Map<ChildProcess, string | undefined>();
function reapAll(): void {
  for (const [proc, dir] of live) {
    try {
      proc.kill('SIGKILL');
    } catch {
      /* gone */
    }
    if (dir) {
      try {
        execFileSync('fusermount', ['-uz', dir], { stdio: 'ignore', timeout: 5000 });
      } catch {
        /* not mounted */
      }
    }
  }
  live.clear();
}
process.on('exit', reapAll);
for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
  process.once(sig, () => {
    reapAll();
    // Let the default action (or tap's own handler) end the process.
    if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
  });
}
export function track(proc: ChildProcess, dir?: string): void {
  live.set(proc, dir);
  proc.on('exit', () => live.delete(proc));
}

export interface Daemon {
  dir: string;
  proc: ChildProcess;
  readonly stdout: string;
  readonly stderr: string;
  /** Resolves when the child exits. */
  exited: Promise<Exit>;
  /** Send a signal and wait for the exit (SIGKILL after `graceMs`). */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<Exit>;
  /** A path inside the mount. */
  p(...parts: string[]): string;
}

/**
 * Run a command; never waits past `timeoutMs`: a process stuck in a request
 * to a wedged mount cannot be killed until its daemon dies, so on a timeout
 * it is sent SIGKILL and the result (code 124) is returned without waiting.
 */
export function run(
  file: string,
  args: string[],
  opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv; input?: string } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise(resolve => {
    const child = spawn(file, args, { env: opts.env ?? process.env, cwd: REPO, stdio: ['pipe', 'pipe', 'pipe'] });
    track(child);
    let stdout = '';
    let stderr = '';
    let done = false;
    const finish = (code: number) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    };
    const timer = setTimeout(() => {
      try {
        child.kill('SIGKILL');
      } catch {
        /* gone */
      }
      stderr += `\n[timed out after ${opts.timeoutMs ?? 30_000} ms]`;
      finish(124);
    }, opts.timeoutMs ?? 30_000);
    child.stdout!.on('data', d => {
      stdout += d;
    });
    child.stderr!.on('data', d => {
      stderr += d;
    });
    child.on('error', e => {
      stderr += String(e);
      finish(127);
    });
    child.on('close', (code, signal) => finish(code ?? (signal ? 128 : 1)));
    child.stdin!.on('error', () => {});
    child.stdin!.end(opts.input ?? '');
  });
}

/** bash -c, with a timeout so a wedged mount cannot hang the test. */
export function sh(cmd: string, timeoutMs = 30_000) {
  return run('bash', ['-c', cmd], { timeoutMs });
}

/** A fresh empty directory; removed (rmdir only, never recursive) after an unmount at teardown. */
export async function makeMountDir(t: Teardownable): Promise<string> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'mdevfs-test-'));
  t.teardown(async () => {
    await run('fusermount', ['-uz', dir], { timeoutMs: 10_000 });
    if (await isMounted(dir)) await run('umount', ['-l', dir], { timeoutMs: 10_000 });
    await fsp.rmdir(dir).catch(() => {});
  });
  return dir;
}

export interface StartOptions {
  /** Use this mount point instead of a new one. */
  dir?: string;
  /** The command; default: node bin/mdevfs mount <dir> ...args. */
  command?: (dir: string) => string[];
  env?: NodeJS.ProcessEnv;
  readyTimeoutMs?: number;
  /** The ready line pattern on stdout. */
  ready?: RegExp;
}

/** `node bin/mdevfs mount <dir> ...args`. */
export const mdevfsMount =
  (...args: string[]) =>
  (dir: string) => [process.execPath, BIN, 'mount', dir, ...args];
/** The hand-made tree of the FUSE adapter tests. */
export const serveTree =
  (...args: string[]) =>
  (dir: string) => [process.execPath, '--import', 'tsx', path.join(FIXTURES, 'serve-tree.ts'), dir, ...args];

/** Spawn a child without waiting for readiness (for failure tests); killed at teardown. */
export function spawnChild(t: Teardownable, argv: string[], env?: NodeJS.ProcessEnv) {
  const proc = spawn(argv[0]!, argv.slice(1), { cwd: REPO, env: env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  track(proc);
  let stdout = '';
  let stderr = '';
  proc.stdout!.on('data', d => {
    stdout += d;
  });
  proc.stderr!.on('data', d => {
    stderr += d;
  });
  const exited = new Promise<Exit>(resolve => proc.on('exit', (code, signal) => resolve({ code, signal })));
  t.teardown(async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGKILL');
      await exited;
    }
  });
  return { proc, exited, out: () => stdout, err: () => stderr };
}

export async function startDaemon(t: Teardownable, opts: StartOptions = {}): Promise<Daemon> {
  const dir = opts.dir ?? (await makeMountDir(t));
  const argv = (opts.command ?? mdevfsMount())(dir);
  const proc = spawn(argv[0]!, argv.slice(1), { cwd: REPO, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  track(proc, dir);
  let stdout = '';
  let stderr = '';
  const exited = new Promise<Exit>(resolve => proc.on('exit', (code, signal) => resolve({ code, signal })));
  const alive = () => proc.exitCode === null && proc.signalCode === null;
  const stop = async (signal: NodeJS.Signals = 'SIGTERM', graceMs = 5000): Promise<Exit> => {
    if (alive()) {
      proc.kill(signal);
      const timer = setTimeout(() => {
        if (alive()) proc.kill('SIGKILL');
      }, graceMs);
      const e = await exited;
      clearTimeout(timer);
      return e;
    }
    return exited;
  };
  // Registered before waiting, so a failed start is cleaned up too. Runs
  // before makeMountDir's teardown (LIFO), which unmounts and removes the dir.
  t.teardown(async () => {
    await stop('SIGTERM', 3000);
    await run('fusermount', ['-uz', dir], { timeoutMs: 10_000 });
  });
  const ready = opts.ready ?? /^mdevfs: mounted /m;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`daemon not ready after ${opts.readyTimeoutMs ?? 30_000} ms\nstdout: ${stdout}\nstderr: ${stderr}`)),
      opts.readyTimeoutMs ?? 30_000,
    );
    proc.stdout!.on('data', d => {
      stdout += d;
      if (ready.test(stdout)) {
        clearTimeout(timer);
        resolve();
      }
    });
    proc.stderr!.on('data', d => {
      stderr += d;
    });
    void exited.then(e => {
      clearTimeout(timer);
      reject(new Error(`daemon exited (${e.code ?? e.signal}) before it was ready\nstdout: ${stdout}\nstderr: ${stderr}`));
    });
  });
  return {
    dir,
    proc,
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
    exited,
    stop,
    p: (...parts: string[]) => path.join(dir, ...parts),
  };
}
