/**
 * Mount lifecycle: preflight checks, stale-mount recovery, the mount itself
 * (fuse-native with raw libfuse options), and unmount. This and ops.ts are the
 * only files that touch fuse-native; it is imported lazily so a missing
 * libfuse.so.2 becomes one clear line instead of a dlopen stack trace.
 *
 * Never call a synchronous fs function on the mount point from here: the
 * daemon answering its own request on the JS thread would deadlock for good.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type FuseType from 'fuse-native';
import { errorMessage, firstLine } from '../core/errno.js';
import type { KDir } from '../kernfs/index.js';
import type { OverlayView } from '../overlay/index.js';
import { createOperations } from './ops.js';
import { exec, fusermountRefusal, which } from './programs.js';

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
  /** libfuse auto_unmount (default true): the mount goes when the daemon dies. */
  autoUnmount?: boolean;
  /** Per-request trace (failed requests, stores). */
  trace?: (message: string) => void;
  /** Merge the tree over this view's base (src/overlay); the bare tree without. */
  view?: OverlayView;
  /** The mount's source in mountinfo (default `mdevfs`). */
  fsname?: string;
}

/** The libfuse option string (docs/fuse.md#mount-options). */
export function fuseOptionString(opts: { allowOther?: boolean; autoUnmount?: boolean; fsname?: string } = {}): string {
  const o = [
    `fsname=${opts.fsname ?? 'mdevfs'}`,
    'subtype=mdevfs',
    'direct_io', // every read and write reaches us, st_size can stay 4096
    'attr_timeout=0',
    'entry_timeout=0',
    'negative_timeout=0', // never stale after create/remove
    'atomic_o_trunc', // echo > f: O_TRUNC arrives in open(), no truncate round trip
    'use_ino', // st_ino is the node's own, stable number
  ];
  if (opts.autoUnmount !== false) o.push('auto_unmount');
  if (opts.allowOther) o.push('allow_other', 'default_permissions');
  return o.join(',');
}

type FuseCtor = typeof FuseType;
let fuseModule: FuseCtor | undefined;

/** Load fuse-native (dlopen of libfuse.so.2). MountError with one line on failure. */
export async function loadFuse(): Promise<FuseCtor> {
  if (fuseModule) return fuseModule;
  try {
    const m = (await import('fuse-native')) as unknown as { default: FuseCtor };
    fuseModule = m.default;
    return fuseModule;
  } catch (e) {
    const line = firstLine(errorMessage(e));
    if (/libfuse/i.test(line)) {
      throw new MountError(`cannot load libfuse.so.2 (install the libfuse2 package): ${line}`);
    }
    throw new MountError(`cannot load fuse-native: ${line}`);
  }
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
  const fm = fusermount ?? (await which('fusermount'));
  if (fm && (await exec(fm, ['-uz', dir], 10_000)).ok) return true;
  return (await exec('umount', ['-l', dir], 10_000)).ok;
}

export interface PreflightResult {
  fusermount: string;
  Fuse: FuseCtor;
  mountpoint: string;
  /** A stale mount was found and cleared. */
  recoveredStale: boolean;
}

/**
 * Everything that can be checked before mounting, each failure a MountError
 * with one line: /dev/fuse, fusermount, libfuse.so.2, and the mount point
 * (missing, not a directory, already mounted, not empty). A stale mount
 * ("Transport endpoint is not connected") is unmounted and the check retried.
 */
export async function preflight(dir: string, log: (m: string) => void = () => {}): Promise<PreflightResult> {
  try {
    const st = await fsp.stat('/dev/fuse');
    if (!st.isCharacterDevice()) throw new Error('not a device');
  } catch {
    throw new MountError('/dev/fuse is missing (load the fuse module, or give the container the device)');
  }
  const fusermount = await which('fusermount');
  if (!fusermount) throw new MountError('fusermount not found (install the fuse package)');
  const Fuse = await loadFuse();

  let mountpoint = path.resolve(dir);
  let recoveredStale = false;
  for (let attempt = 0; ; attempt++) {
    let st;
    try {
      st = await fsp.stat(mountpoint);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if ((code === 'ENOTCONN' || code === 'ECONNABORTED') && attempt === 0) {
        log(`mdevfs: ${mountpoint}: stale mount (transport endpoint is not connected); unmounting it`);
        if (!(await forceUnmount(mountpoint, fusermount))) {
          throw new MountError(`${mountpoint}: stale mount that could not be unmounted (try: fusermount -uz ${mountpoint})`);
        }
        recoveredStale = true;
        continue;
      }
      if (code === 'ENOENT') throw new MountError(`mount point ${mountpoint} does not exist`);
      if (code === 'ENOTCONN') throw new MountError(`${mountpoint}: stale mount that could not be cleared`);
      throw new MountError(`mount point ${mountpoint}: ${firstLine(errorMessage(e))}`);
    }
    if (!st.isDirectory()) throw new MountError(`mount point ${mountpoint} is not a directory`);
    break;
  }
  // /proc/self/mountinfo shows resolved paths.
  mountpoint = await fsp.realpath(mountpoint).catch(() => mountpoint);
  const mounted = await mountsAt(mountpoint);
  if (mounted.length) {
    const m = mounted[mounted.length - 1]!;
    throw new MountError(`${mountpoint} is already a mount point (${m.fstype}${m.source ? ` from ${m.source}` : ''})`);
  }
  const entries = await fsp.readdir(mountpoint);
  if (entries.length) throw new MountError(`mount point ${mountpoint} is not empty`);
  return { fusermount, Fuse, mountpoint, recoveredStale };
}

/** A live mount. */
export interface Mounted {
  readonly mountpoint: string;
  readonly options: string;
  /** Unmount (idempotent). */
  unmount(): Promise<void>;
  /** Whether the mount point is still ours in /proc/self/mountinfo. */
  isMounted(): Promise<boolean>;
}

/** Mount `opts.root` on the checked mount point. */
export async function mountTree(pre: PreflightResult, opts: MountOptions): Promise<Mounted> {
  const { Fuse, fusermount, mountpoint } = pre;
  const options = fuseOptionString(opts);
  // fuse-native unmounts through a static method running `fusermount -uz`
  // via the shell; use the path we found, and umount -l as a fallback.
  (Fuse as unknown as { unmount: (mnt: string, cb: (err: Error | null) => void) => void }).unmount = (mnt, cb) => {
    forceUnmount(mnt, fusermount).then(ok => cb(ok ? null : new Error(`could not unmount ${mnt}`)), cb);
  };

  class MdevFuse extends Fuse {
    override _fuseOptions(): string {
      return '-o' + options;
    }
  }
  const fuse = new MdevFuse(mountpoint, createOperations(opts.root, { trace: opts.trace, view: opts.view }), {
    // The core bounds plugin calls itself; a `remove` may rightly block until a VFIO close.
    timeout: false,
  });

  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new MountError(`mounting ${mountpoint} timed out`)), 15_000);
    fuse.mount(err => {
      clearTimeout(timer);
      if (!err) return resolve();
      // fuse-native only says "fuse failed": ask fusermount why.
      void fusermountRefusal(fusermount, options, mountpoint).then(why => {
        reject(new MountError(`cannot mount ${mountpoint}: ${why ?? firstLine(errorMessage(err))}`));
      });
    });
  });

  let unmounting: Promise<void> | undefined;
  return {
    mountpoint,
    options,
    unmount(): Promise<void> {
      unmounting ??= new Promise<void>(resolve => {
        fuse.unmount(err => {
          if (err) {
            // Last resort; the connection dies with the process anyway.
            forceUnmount(mountpoint, fusermount).then(
              () => resolve(),
              () => resolve(),
            );
          } else {
            resolve();
          }
        });
      });
      return unmounting;
    },
    async isMounted(): Promise<boolean> {
      return (await mountsAt(mountpoint)).some(m => m.fstype === 'fuse.mdevfs');
    },
  };
}

/**
 * Unmount cleanly on SIGINT/SIGTERM/SIGHUP: unmount, run `cleanup` (bounded),
 * exit 0. A second signal exits at once. Also exits when the mount vanishes
 * under us (an external fusermount -u leaves fuse-native running silently).
 */
export function unmountOnSignals(
  m: Mounted,
  opts: { cleanup?: () => Promise<void>; log?: (msg: string) => void; watchMs?: number } = {},
): (why?: string) => Promise<never> {
  const log = opts.log ?? (() => {});
  let stopping = false;
  const stop = async (why: string, code = 0): Promise<never> => {
    if (stopping) process.exit(code || 1);
    stopping = true;
    log(`mdevfs: ${why}; unmounting ${m.mountpoint}`);
    await m.unmount();
    if (opts.cleanup) {
      await Promise.race([
        opts.cleanup().catch(e => log(`mdevfs: shutdown: ${firstLine(errorMessage(e))}`)),
        new Promise(r => setTimeout(r, 5000).unref()),
      ]);
    }
    log('mdevfs: unmounted');
    process.exit(code);
  };
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      if (stopping) {
        process.exit(1);
      }
      void stop(`${sig}`);
    });
  }
  const watchMs = opts.watchMs ?? 2000;
  if (watchMs > 0) {
    const timer = setInterval(() => {
      m.isMounted().then(
        yes => {
          if (!yes && !stopping) void stop('the mount went away', 0);
        },
        () => {},
      );
    }, watchMs);
    timer.unref();
  }
  // Unlike a second signal, a second request to stop waits for the first.
  return (why = 'stopping') => (stopping ? new Promise<never>(() => {}) : stop(why));
}
