/**
 * Start and stop the two FUSE servers the benchmark compares, each in its own
 * process: mdevfs (bin/mdevfs mount --driver test/bench/bench-driver.ts, so the
 * compiled dist/ of `npm run build`) and test/bench/baseline-fs.ts. stop() is
 * idempotent and always ends with `fusermount -uz`, then rmdir of the mount
 * point; stopSync() is the last resort for process.on('exit').
 */
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { promises as fsp, rmdirSync } from 'node:fs';
import path from 'node:path';
import { REPO, isMounted } from '../helpers/util.js';

export { REPO };

export interface Server {
  name: string;
  dir: string;
  proc: ChildProcess;
  /** Everything it printed (for error messages). */
  output(): string;
  stop(): Promise<void>;
  stopSync(): void;
}

function fusermountUz(dir: string): Promise<void> {
  return new Promise(resolve => execFile('fusermount', ['-uz', dir], { timeout: 10_000 }, () => resolve()));
}

/** Spawn a server on a fresh mount point `dir` (created here) and wait for `ready` on stdout. */
export async function startServer(
  name: string,
  dir: string,
  argv: string[],
  ready: RegExp,
  timeoutMs = 60_000,
  env: NodeJS.ProcessEnv = process.env,
): Promise<Server> {
  await fsp.mkdir(dir);
  const proc = spawn(argv[0]!, argv.slice(1), { cwd: REPO, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', d => {
    out += d;
  });
  proc.stderr!.on('data', d => {
    out += d;
  });
  const exited = new Promise<void>(resolve => proc.on('exit', () => resolve()));
  const alive = () => proc.exitCode === null && proc.signalCode === null;
  let stopping: Promise<void> | undefined;
  const server: Server = {
    name,
    dir,
    proc,
    output: () => out,
    stop() {
      stopping ??= (async () => {
        if (alive()) {
          proc.kill('SIGTERM');
          const timer = setTimeout(() => {
            if (alive()) proc.kill('SIGKILL');
          }, 5000);
          await exited;
          clearTimeout(timer);
        }
        await fusermountUz(dir);
        if (await isMounted(dir)) {
          await new Promise<void>(resolve => execFile('umount', ['-l', dir], { timeout: 10_000 }, () => resolve()));
        }
        await fsp.rmdir(dir).catch(() => {});
      })();
      return stopping;
    },
    stopSync() {
      if (alive()) proc.kill('SIGKILL');
      spawnSync('fusermount', ['-uz', dir], { timeout: 10_000, stdio: 'ignore' });
      try {
        rmdirSync(dir);
      } catch {
        /* still mounted or already gone */
      }
    },
  };
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${name} not ready after ${timeoutMs} ms:\n${out}`)), timeoutMs);
      proc.stdout!.on('data', () => {
        if (ready.test(out)) {
          clearTimeout(timer);
          resolve();
        }
      });
      proc.on('error', e => {
        clearTimeout(timer);
        reject(e);
      });
      void exited.then(() => {
        clearTimeout(timer);
        reject(new Error(`${name} exited before it was ready:\n${out}`));
      });
    });
  } catch (e) {
    await server.stop();
    throw e;
  }
  return server;
}

/** mdevfs with the given FUSE engine (docs/fuse.md#engines); `reader`: the kernel engine's (MDEVFS_FUSE_READER). */
export function startMdevfs(dir: string, engine: 'kernel' | 'fuse-native', reader?: 'loop' | 'worker'): Promise<Server> {
  return startServer(
    reader ? `mdevfs ${engine} (${reader} reader)` : `mdevfs ${engine}`,
    dir,
    [
      process.execPath,
      path.join(REPO, 'bin/mdevfs'),
      'mount',
      dir,
      '--engine',
      engine,
      '--driver',
      path.join(REPO, 'test/bench/bench-driver.ts'),
    ],
    /^mdevfs: mounted /m,
    60_000,
    reader ? { ...process.env, MDEVFS_FUSE_READER: reader } : process.env,
  );
}

export function startBaseline(dir: string): Promise<Server> {
  return startServer(
    'baseline',
    dir,
    [process.execPath, '--import', 'tsx', path.join(REPO, 'test/bench/baseline-fs.ts'), dir],
    /^baseline: mounted /m,
  );
}

/**
 * The C libfuse2 baseline (./c-libfuse.c), compiled into `tmp` when gcc and
 * libfuse-dev are present; otherwise undefined and the reason.
 */
export async function startCLibfuse(tmp: string, dir: string, options: string): Promise<Server | string> {
  const flags = await new Promise<string | undefined>(resolve =>
    execFile('pkg-config', ['--cflags', '--libs', 'fuse'], { timeout: 10_000 }, (err, out) => resolve(err ? undefined : out.trim())),
  );
  if (flags === undefined) return 'no libfuse-dev (pkg-config fuse failed): apt-get install libfuse-dev';
  const bin = path.join(tmp, 'c-libfuse');
  const built = await new Promise<string | undefined>(resolve =>
    execFile(
      'gcc',
      ['-O2', '-Wall', '-o', bin, path.join(REPO, 'test/bench/c-libfuse.c'), ...flags.split(/\s+/)],
      { timeout: 60_000 },
      (err, _o, e) => resolve(err ? `gcc failed: ${e.split('\n')[0] ?? ''}` : undefined),
    ),
  );
  if (built) return built;
  const server = await startServer('c-libfuse', dir, [bin, dir, '-f', '-o', options], /^clibfuse: mounted/m);
  const stop = server.stop.bind(server);
  server.stop = async () => {
    await stop();
    await fsp.unlink(bin).catch(() => {});
  };
  return server;
}
