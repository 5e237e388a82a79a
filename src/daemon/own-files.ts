/**
 * The files the daemon itself writes as root (--log-file, --pidfile): never
 * inside a mount point it serves (a write there would wait on itself), never
 * through a symlink or a hard link someone else planted at the name.
 */
import { closeSync, constants as C, fstatSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { errorMessage, firstLine } from '../core/errno.js';
import { UserError } from './errors.js';

/** A mount point as mountinfo will show it: the real path, or the resolved one if it cannot be resolved yet. */
export async function canonicalDir(dir: string): Promise<string> {
  return fsp.realpath(path.resolve(dir)).catch(() => path.resolve(dir));
}

/**
 * `file` with its directory resolved (its last component is not followed),
 * refused when it would be inside one of `mountpoints`.
 */
export async function resolveOwnFile(flag: string, file: string, mountpoints: ReadonlyArray<string | undefined>): Promise<string> {
  const abs = path.resolve(file);
  let dir: string;
  try {
    dir = await fsp.realpath(path.dirname(abs));
  } catch (e) {
    throw new UserError(`${flag} ${file}: ${firstLine(errorMessage(e))}`);
  }
  const out = path.join(dir, path.basename(abs));
  for (const mp of mountpoints) {
    if (mp && (out === mp || out.startsWith(mp + path.sep))) throw new UserError(`${flag} ${file} is inside the mount point ${mp}`);
  }
  return out;
}

/** Open `file` for appending: created 0600 if missing; a symlink, a hard-linked or special file is refused. */
export function openAppend(flag: string, file: string): number {
  let fd: number;
  try {
    fd = openSync(file, C.O_WRONLY | C.O_APPEND | C.O_CREAT | C.O_NOFOLLOW, 0o600);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ELOOP') throw new UserError(`${flag} ${file} is a symbolic link (name the file it points to)`);
    throw new UserError(`${flag}: cannot open ${file}: ${firstLine(errorMessage(e))}`);
  }
  const st = fstatSync(fd);
  let why: string | undefined;
  if (!st.isFile() && !st.isFIFO()) why = 'is not a regular file';
  else if (st.isFile() && st.nlink > 1) why = `has ${st.nlink} hard links`;
  if (why) {
    closeSync(fd);
    throw new UserError(`${flag} ${file} ${why}`);
  }
  return fd;
}

/**
 * Write `pid` to `file` atomically: a new file next to it (O_EXCL, so never
 * one someone else made), renamed over the name (which replaces a link
 * there rather than following it).
 */
export function writePidfile(file: string, pid: number): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${pid}.tmp`);
  try {
    const fd = openSync(tmp, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, 0o644);
    try {
      writeSync(fd, `${pid}\n`);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
  } catch (e) {
    try {
      unlinkSync(tmp);
    } catch {
      /* not created */
    }
    throw new UserError(`--pidfile: cannot write ${file}: ${firstLine(errorMessage(e))}`);
  }
}

/** Remove `file` if it still holds `pid` (another daemon may have taken the name since). */
export function removePidfile(file: string, pid: number): void {
  try {
    const fd = openSync(file, C.O_RDONLY | C.O_NOFOLLOW);
    let text: string;
    try {
      text = readFileSync(fd, 'utf8');
    } finally {
      closeSync(fd);
    }
    if (text.trim() === String(pid)) unlinkSync(file);
  } catch {
    /* gone already */
  }
}
