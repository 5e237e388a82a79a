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
 */
import { closeSync, createWriteStream, openSync, promises as fsp, writeSync } from 'node:fs';
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

/** Open `file` for the uevent stream. Throws with a one-line message on failure. */
export async function openUeventLog(file: string): Promise<UeventLog> {
  let special = false;
  try {
    const st = await fsp.stat(file);
    if (st.isDirectory()) throw new Error(`${file} is a directory`);
    special = !st.isFile();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
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
  let fd: number | undefined = openSync(file, 'w', 0o644);
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
