/**
 * `--uevents <file>`: the core's uevents as JSON lines, one per event, keys in
 * the kernel's order (ACTION, DEVPATH, SUBSYSTEM, MDEV_STATE, DRIVER or the
 * VFIO char devices' MAJOR, MINOR, DEVNAME, then SEQNUM)
 * and every value a string, as in the kernel's KEY=value environment:
 *
 *   {"ACTION":"add","DEVPATH":"/devices/virtual/mtty/mtty/<uuid>","SUBSYSTEM":"mdev","SEQNUM":"3"}
 *
 * A regular file (created or truncated) is written synchronously, so an
 * event's line is in the file before the write(2) that caused it returns.
 * Anything else that exists (a FIFO, /dev/stdout) is written through a
 * stream, in order, without ever blocking the daemon.
 *
 * We run as root: a file is created only where the path really leads (links
 * resolved first), never inside a mount point, and never through a link
 * another user owns.
 */
import { closeSync, constants, createWriteStream, openSync, promises as fsp, writeSync } from 'node:fs';
import path from 'node:path';
import type { Uevent } from '../core/api.js';

export interface UeventLog {
  readonly path: string;
  write(ev: Uevent): void;
  close(): Promise<void>;
}

/** One uevent as a JSON line (no trailing newline). */
export function ueventLine(ev: Uevent): string {
  const o: Record<string, string> = {};
  for (const [k, v] of Object.entries(ev)) if (v !== undefined) o[k] = String(v);
  return JSON.stringify(o);
}

const inside = (file: string, dir: string) => file === dir || file.startsWith(dir.endsWith('/') ? dir : dir + '/');

/**
 * Where writing `file` really lands: its last component's links followed (each
 * must be ours), then its directory's real path. Throws (one line) for a link
 * another user owns, or a target inside one of `mountpoints`.
 */
async function realTarget(file: string, mountpoints: readonly string[]): Promise<string> {
  let target = path.resolve(file);
  for (let hops = 0; ; hops++) {
    const st = await fsp.lstat(target).catch(() => undefined);
    if (!st?.isSymbolicLink()) break;
    if (hops === 40) throw new Error(`${file}: too many levels of symbolic links`);
    if (st.uid !== process.geteuid?.()) throw new Error(`${target} is a symbolic link owned by uid ${st.uid} (not followed)`);
    target = path.resolve(path.dirname(target), await fsp.readlink(target));
  }
  target = path.join(await fsp.realpath(path.dirname(target)), path.basename(target));
  for (const mp of mountpoints) {
    const real = await fsp.realpath(mp).catch(() => path.resolve(mp));
    if (inside(target, real)) throw new Error(`it leads into the mount point ${real} (as ${target})`);
  }
  return target;
}

/**
 * Open `file` for the uevent stream; refused if it leads into one of
 * `mountpoints`. Throws with a one-line message on failure.
 */
export async function openUeventLog(file: string, mountpoints: readonly string[] = []): Promise<UeventLog> {
  let special = false;
  try {
    const st = await fsp.stat(file);
    if (st.isDirectory()) throw new Error(`${file} is a directory`);
    special = !st.isFile();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  // Links are checked for a FIFO or a device too (another user's link to a
  // disk is no better than one to a file), but such a file is opened as named:
  // /dev/stdout's target is no path.
  const target = await realTarget(file, mountpoints);
  if (special) {
    const stream = createWriteStream(file, { flags: 'a' });
    stream.on('error', () => {
      /* the reader went away: drop the rest */
    });
    return {
      path: file,
      write: ev => {
        if (!stream.destroyed) stream.write(ueventLine(ev) + '\n');
      },
      close: () => new Promise(resolve => stream.end(resolve)),
    };
  }
  // O_NOFOLLOW: a link put there since realTarget() looked is not followed.
  let fd: number | undefined = openSync(target, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW, 0o644);
  return {
    path: file,
    write: ev => {
      if (fd === undefined) return;
      try {
        writeSync(fd, ueventLine(ev) + '\n');
      } catch {
        try {
          closeSync(fd);
        } catch {
          /* already */
        }
        fd = undefined; // a full disk must not take the daemon down
      }
    },
    close: async () => {
      if (fd !== undefined) closeSync(fd);
      fd = undefined;
    },
  };
}
