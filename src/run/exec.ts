/**
 * mount(8) and umount(8) for a run's namespace, as child processes. Never a
 * synchronous call: the caller is the FUSE daemon, and a synchronous call
 * that reaches its own tree would wait for an answer only its own (blocked)
 * thread can give.
 */
import { execFile } from 'node:child_process';
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
