/**
 * What both FUSE engines share about a mount: its options, the live mount's
 * handle, the user-facing error, /proc/self/mountinfo, and the lazy unmount
 * that clears a stale one.
 */
import { promises as fsp } from 'node:fs';
import type { KDir } from '../kernfs/index.js';
import type { OverlayView } from '../overlay/index.js';
import { exec, which } from './programs.js';

/** A failure with a one-line, user-facing message (no stack trace wanted). */
export class MountError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MountError';
  }
}

export interface MountOptions {
  /** The tree to serve. */
  root: KDir;
  /** Let other users in (adds allow_other and default_permissions). */
  allowOther?: boolean;
  /** Unmount when the daemon dies, even by SIGKILL (default true): libfuse's auto_unmount, or the kernel engine's watchdog. */
  autoUnmount?: boolean;
  /** Per-request trace (failed requests, stores). */
  trace?: (message: string) => void;
  /** Merge the tree over this view's base (src/overlay); the bare tree without. */
  view?: OverlayView;
  /** The mount's source in mountinfo (default `mdevfs`). */
  fsname?: string;
  /** Let the kernel cache what the tree says, with invalidations (kernel engine only; docs/fuse.md#caching). Default true. */
  cache?: boolean;
}

/** A live mount. */
export interface Mounted {
  readonly mountpoint: string;
  readonly options: string;
  /** Unmount (idempotent). */
  unmount(): Promise<void>;
  /** Whether the mount point is still ours in /proc/self/mountinfo. */
  isMounted(): Promise<boolean>;
  /** Resolves once every change of the tree so far has reached the kernel's caches (at once without caching). */
  settled(): Promise<void>;
}

export interface MountInfoEntry {
  mountpoint: string;
  fstype: string;
  source: string;
  /** The file system's own options (a FUSE mount's `user_id=` is who mounted it). */
  superOptions: string;
}

/** /proc/self/mountinfo entries for `dir` (octal escapes decoded). */
export async function mountsAt(dir: string): Promise<MountInfoEntry[]> {
  let text: string;
  try {
    text = await fsp.readFile('/proc/self/mountinfo', 'utf8');
  } catch {
    return [];
  }
  const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  const out: MountInfoEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    const [pre, post] = line.split(' - ');
    if (!pre || !post) continue;
    const f = pre.split(' ');
    const mp = unescape(f[4] ?? '');
    if (mp !== dir) continue;
    const [fstype = '', source = '', superOptions = ''] = post.split(' ');
    out.push({ mountpoint: mp, fstype, source: unescape(source), superOptions });
  }
  return out;
}

/** Unmount `dir` lazily: fusermount -uz, falling back to umount -l. */
export async function forceUnmount(dir: string, fusermount?: string): Promise<boolean> {
  const fm = fusermount ?? which('fusermount');
  if (fm && (await exec(fm, ['-uz', dir], 10_000)).ok) return true;
  return (await exec('umount', ['-l', dir], 10_000)).ok;
}
