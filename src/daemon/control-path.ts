/**
 * Where a daemon's control socket lives (docs/control.md): in a directory
 * only its user can enter, `$TMPDIR/mdevfs-ctl-<uid>/` (mode 0700), named
 * after the mount point (`mount`) or at random (`run`, which hands the path
 * to its command in MDEVFS_CTL). mdevfs runs as root, so it never uses a
 * directory someone else made or could swap: it creates it with mkdir 0700
 * and refuses one that is not its own, not a directory, or open to others.
 */
import { createHash, randomBytes } from 'node:crypto';
import { promises as fsp, type Stats } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { UserError } from './errors.js';

/** The environment variable `mdevfs run` sets for its command, and `mdevfs ctl` reads. */
export const CONTROL_ENV = 'MDEVFS_CTL';

const uid = (): number => process.geteuid?.() ?? 0;

export function controlDir(): string {
  return path.join(os.tmpdir(), `mdevfs-ctl-${uid()}`);
}

/** The socket of the daemon that serves the tree mounted at `mountpoint` (a real path). */
export function mountControlSocket(mountpoint: string): string {
  const h = createHash('sha256').update(mountpoint).digest('hex').slice(0, 16);
  return path.join(controlDir(), `mount-${h}.sock`);
}

/** A fresh socket path for one `mdevfs run`. */
export function runControlSocket(): string {
  return path.join(controlDir(), `run-${randomBytes(8).toString('hex')}.sock`);
}

/** Why `st` (a socket's directory) may not be trusted by a process of `owner`, or undefined. */
function distrust(dir: string, st: Stats, owners: readonly number[]): string | undefined {
  if (st.isSymbolicLink()) return `${dir} is a symbolic link`;
  if (!st.isDirectory()) return `${dir} is not a directory`;
  if (!owners.includes(st.uid)) return `${dir} is owned by uid ${st.uid}, not ${owners.join(' or ')}`;
  if (st.mode & 0o022) return `${dir} is writable by others (mode ${(st.mode & 0o777).toString(8)})`;
  return undefined;
}

/** Make (or check) the socket's directory: ours, mode 0700, under a directory others cannot swap it in. */
export async function ensureControlDir(socket: string): Promise<void> {
  const dir = path.dirname(socket);
  const up = await fsp.stat(path.dirname(dir));
  // A world-writable parent (/tmp) is safe only with the sticky bit: nobody else can rename our directory.
  if (up.mode & 0o002 && !(up.mode & 0o1000)) {
    throw new UserError(`control socket: ${path.dirname(dir)} is writable by everyone and not sticky; set TMPDIR elsewhere`);
  }
  try {
    await fsp.mkdir(dir, { mode: 0o700 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new UserError(`control socket: cannot make ${dir}: ${(e as Error).message}`);
  }
  const st = await fsp.lstat(dir);
  const hint = '; set TMPDIR to a directory of your own, or give --no-ctl';
  const why = distrust(dir, st, [uid()]);
  if (why) throw new UserError(`control socket: refusing ${dir}: ${why}${hint}`);
  if (st.mode & 0o077) throw new UserError(`control socket: refusing ${dir}: mode ${(st.mode & 0o777).toString(8)}, not 700${hint}`);
}

/**
 * Before a client talks to `socket`: its directory must belong to root or to
 * the caller and be closed to others' writes, so it is a daemon of theirs that answers.
 */
export async function checkControlSocket(socket: string): Promise<void> {
  const dir = path.dirname(socket);
  let st: Stats;
  try {
    st = await fsp.lstat(dir);
  } catch (e) {
    throw new UserError(`control socket ${socket}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message} (is the daemon running?)`);
  }
  const why = distrust(dir, st, [0, uid()]);
  if (why) throw new UserError(`control socket ${socket}: refusing: ${why}`);
}
