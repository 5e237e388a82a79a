/**
 * The system programs mdevfs runs: fusermount (mount.ts), mount(8) and
 * umount(8) (src/run), unshare and setpriv (src/run/outer.ts). Found on PATH
 * and run as child processes, never synchronously: the caller is the FUSE
 * daemon, and a synchronous call that reaches its own tree would wait for an
 * answer only its own (blocked) thread can give.
 */
import { execFile } from 'node:child_process';
import { constants as fsConstants, promises as fsp } from 'node:fs';
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
 * for a minimal PATH), or undefined. The one PATH lookup of mdevfs:
 * fusermount (mount.ts), unshare and setpriv for `mdevfs run` (src/run/outer.ts).
 */
export async function which(name: string, envPath = process.env.PATH ?? ''): Promise<string | undefined> {
  const dirs = [...envPath.split(':').filter(Boolean), '/usr/bin', '/bin', '/usr/sbin', '/sbin'];
  for (const d of dirs) {
    const p = path.join(d, name);
    try {
      const st = await fsp.stat(p);
      if (!st.isFile() || (st.mode & 0o111) === 0) continue;
      await fsp.access(p, fsConstants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}
