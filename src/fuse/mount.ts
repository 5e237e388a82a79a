/**
 * Mount lifecycle for either engine (docs/fuse.md#engines): preflight checks,
 * stale-mount recovery, the mount itself (native-mount.ts or kernel/mount.ts),
 * and unmounting on signals.
 *
 * Never call a synchronous fs function on the mount point from here: the
 * daemon answering its own request on the JS thread would deadlock for good.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { errorMessage, firstLine } from '../core/errno.js';
import { mountKernel } from './kernel/mount.js';
import { MountError, forceUnmount, mountsAt, type MountOptions, type Mounted } from './mount-common.js';
import { loadFuse, mountNative } from './native-mount.js';
import { which } from './programs.js';
import { defaultEngine, type EngineName } from './engines.js';

export { MountError, forceUnmount, mountsAt, type MountInfoEntry, type MountOptions, type Mounted } from './mount-common.js';
export { fuseOptionString, loadFuse } from './native-mount.js';
export { ENGINES, defaultEngine, type EngineName } from './engines.js';

export interface PreflightResult {
  engine: EngineName;
  /** fuse-native only. */
  fusermount?: string;
  /** fuse-native only. */
  Fuse?: Awaited<ReturnType<typeof loadFuse>>;
  mountpoint: string;
  /** A stale mount was found and cleared. */
  recoveredStale: boolean;
}

/**
 * Everything that can be checked before mounting, each failure a MountError
 * with one line: /dev/fuse, for fuse-native also fusermount and libfuse.so.2,
 * and the mount point (missing, not a directory, already mounted, not
 * empty). A stale mount ("Transport endpoint is not connected") is unmounted
 * and the check retried.
 */
export async function preflight(
  dir: string,
  log: (m: string) => void = () => {},
  engine: EngineName = defaultEngine(),
): Promise<PreflightResult> {
  try {
    const st = await fsp.stat('/dev/fuse');
    if (!st.isCharacterDevice()) throw new Error('not a device');
  } catch {
    throw new MountError('/dev/fuse is missing (load the fuse module, or give the container the device)');
  }
  let fusermount: string | undefined;
  let Fuse: PreflightResult['Fuse'];
  if (engine === 'fuse-native') {
    fusermount = which('fusermount');
    if (!fusermount) throw new MountError('fusermount not found (install the fuse package)');
    Fuse = await loadFuse();
  } else if (process.getuid?.() !== 0) {
    throw new MountError('the kernel engine mounts as root only (use --engine fuse-native)');
  }

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
  return { engine, fusermount, Fuse, mountpoint, recoveredStale };
}

/** Mount `opts.root` on the checked mount point, with the engine preflight chose. */
export async function mountTree(pre: PreflightResult, opts: MountOptions): Promise<Mounted> {
  if (pre.engine === 'kernel') return mountKernel(pre.mountpoint, opts);
  return mountNative({ Fuse: pre.Fuse!, fusermount: pre.fusermount!, mountpoint: pre.mountpoint }, opts);
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
