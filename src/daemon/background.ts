/**
 * `mdevfs mount --background`: start the same command again as a detached
 * daemon (its own session, so the terminal's signals and the starter's exit
 * leave it alone) and wait until it reports, on a pipe, that the tree is
 * mounted. A daemon that fails first says why on stderr, which is relayed.
 */
import { spawn } from 'node:child_process';
import { UserError } from './errors.js';

/** What a daemon reports once mounted: the `--json` ready line and `--ready-fd`. */
export interface ReadyInfo {
  mountpoint: string;
  pid: number;
  profile: string;
  parents: number;
  vfioDir?: string;
}

/** The fd on which the detached daemon reports readiness (`--detached 3`). */
export const DETACHED_READY_FD = 3;

/**
 * Run `node <script> mount --detached 3 <mountArgs>` detached; resolve with
 * its ready line, or reject with its error lines (a UserError with its status).
 */
export function startDetached(script: string, mountArgs: readonly string[]): Promise<ReadyInfo> {
  const argv = [...process.execArgv, script, 'mount', '--detached', String(DETACHED_READY_FD), ...mountArgs];
  const child = spawn(process.execPath, argv, { detached: true, stdio: ['ignore', 'ignore', 'pipe', 'pipe'] });
  const ready = child.stdio[DETACHED_READY_FD]!;
  let stderr = '';
  let line = '';
  return new Promise<ReadyInfo>((resolve, reject) => {
    child.stderr!.on('data', d => {
      stderr += d;
    });
    ready.on('data', d => {
      line += d;
      const nl = line.indexOf('\n');
      if (nl < 0) return;
      // Ours no longer: the daemon writes later messages to a pipe nobody reads (ignored) or its log file.
      child.unref();
      child.stderr!.destroy();
      ready.destroy();
      try {
        resolve(JSON.parse(line.slice(0, nl)) as ReadyInfo);
      } catch {
        reject(new Error(`the daemon's ready line is not JSON: ${line.slice(0, nl)}`));
      }
    });
    child.on('error', reject);
    // 'close', not 'exit': by then every line of stderr has been read.
    child.on('close', (code, signal) => {
      const lines = stderr
        .split('\n')
        .filter(l => l.trim() !== '')
        .map(l => l.replace(/^mdevfs: /, ''));
      if (signal) lines.push(`the daemon was killed by ${signal} before the tree was mounted`);
      if (lines.length === 0) lines.push(`the daemon exited with status ${code} before the tree was mounted`);
      reject(new UserError(lines.join('\n'), code || 1));
    });
  });
}
