/**
 * The system programs mdevfs runs: fusermount (mount.ts), mount(8) and
 * umount(8) (src/run), unshare and setpriv (src/run/outer.ts). Found on PATH
 * and run as child processes, never synchronously: the caller is the FUSE
 * daemon, and a synchronous call that reaches its own tree would wait for an
 * answer only its own (blocked) thread can give.
 */
import { execFile, spawn } from 'node:child_process';
import { accessSync, constants as fsConstants, statSync } from 'node:fs';
import path from 'node:path';
import { firstLine } from '../core/errno.js';

/** Run `file`; `out` is the first line of what it printed (or of the failure), for one-line messages. */
export function exec(file: string, args: string[], timeoutMs = 15_000): Promise<{ ok: boolean; out: string }> {
  return new Promise(resolve => {
    execFile(file, args, { timeout: timeoutMs }, (err, stdout, stderr) => {
      const out = firstLine(`${stdout}${stderr}`.trim());
      resolve({ ok: !err, out: out || (err ? firstLine(err.message) : '') });
    });
  });
}

/**
 * The path of the executable `name` (PATH, then the usual system directories,
 * for a minimal PATH), or undefined. The one PATH lookup of mdevfs: fusermount
 * and mount(8) (mount.ts, kernel/mount.ts), unshare and setpriv for `mdevfs run`.
 * Synchronous: a few stat calls, and the run's start measured the asynchronous
 * lookup at tens of milliseconds on a busy threadpool.
 */
export function which(name: string, envPath = process.env.PATH ?? ''): string | undefined {
  const dirs = [...envPath.split(':').filter(Boolean), '/usr/bin', '/bin', '/usr/sbin', '/sbin'];
  for (const d of dirs) {
    const p = path.join(d, name);
    try {
      const st = statSync(p);
      if (!st.isFile() || (st.mode & 0o111) === 0) continue;
      accessSync(p, fsConstants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

/** libfuse options that reach fusermount (the rest are the library's own). */
const FUSERMOUNT_OPTION = /^(allow_other|allow_root|default_permissions|auto_unmount|fsname=|subtype=|max_read=|blkdev|blksize=)/;

/**
 * fusermount's own reason for refusing to mount `dir` (its first stderr line),
 * or undefined. libfuse runs it with no stderr (Node marks fd 2 close-on-exec),
 * so call this after a failed mount to ask again. Should it mount this time,
 * that mount is taken down again before this resolves.
 */
export function fusermountRefusal(
  fusermount: string,
  libfuseOptions: string,
  dir: string,
  timeoutMs = 10_000,
): Promise<string | undefined> {
  const opts = [
    'rw',
    'nosuid',
    'nodev',
    ...libfuseOptions.split(',').filter(o => FUSERMOUNT_OPTION.test(o) && o !== 'auto_unmount'),
    'auto_unmount',
  ];
  return new Promise(resolve => {
    // fd 3, a socket (libuv's pipes are socketpairs), is where fusermount sends /dev/fuse.
    const child = spawn(fusermount, ['-o', opts.join(','), '--', dir], {
      stdio: ['ignore', 'ignore', 'pipe', 'pipe'],
      env: { ...process.env, _FUSE_COMMFD: '3' },
      timeout: timeoutMs,
    });
    let err = '';
    let mounted = false;
    child.stderr!.on('data', d => (err += d));
    // Data on the socket is the /dev/fuse descriptor: it mounted this time.
    // Closing the socket makes its auto_unmount half unmount and exit.
    child.stdio[3]!.on('data', () => {
      mounted = true;
      child.stdio[3]!.destroy();
    });
    child.stdio[3]!.on('error', () => {});
    child.on('error', () => resolve(undefined));
    child.on('close', code => {
      if (!mounted) return resolve(code === 0 ? undefined : firstLine(err.trim()) || undefined);
      void exec(fusermount, ['-uz', dir]).then(() => resolve(undefined));
    });
  });
}
