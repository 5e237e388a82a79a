/**
 * The kernel engine's mount, as root and without libfuse: open /dev/fuse,
 * hand it to mount(8) as its fd 3 (`-o fd=3,rootmode=…`: fs/fuse/inode.c
 * fuse_parse_param), then serve the connection (session.ts).
 *
 * A daemon that dies leaves its mount behind ("Transport endpoint is not
 * connected"), so a watchdog does what libfuse's auto_unmount does: a
 * detached shell holding the read end of a pipe whose write end only this
 * process has; when it reads end of file (this process is gone, by any
 * signal), it runs `umount -l`. A clean unmount kills the watchdog first.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { firstLine } from '../../core/errno.js';
import { MountError, forceUnmount, mountsAt, type MountOptions, type Mounted } from '../mount-common.js';
import { which } from '../programs.js';
import { TreeFs } from '../tree-fs.js';
import { Session, type CachePolicy } from './session.js';

export const FSTYPE = 'fuse.mdevfs';

/** The kernel's mount options (the fuse module's own; nosuid,nodev as fusermount adds them). */
export function kernelOptionString(opts: { allowOther?: boolean }): string {
  const o = ['nosuid', 'nodev', 'fd=3', 'rootmode=40000', 'user_id=0', 'group_id=0'];
  if (opts.allowOther) o.push('allow_other', 'default_permissions');
  return o.join(',');
}

/**
 * How long the kernel may keep the tree's names and attributes (docs/fuse.md#caching):
 * a day, since every change is pushed to it (invalidate.ts); nothing without caching.
 */
export function cachePolicy(cache: boolean | undefined): CachePolicy {
  return cache === false ? { entry: 0, attr: 0 } : { entry: 86_400, attr: 86_400 };
}

function run(file: string, args: string[], fd?: number): Promise<{ code: number; err: string }> {
  return new Promise(resolve => {
    const child = spawn(file, args, { stdio: ['ignore', 'ignore', 'pipe', ...(fd === undefined ? [] : [fd])], timeout: 15_000 });
    let err = '';
    child.stderr!.on('data', d => (err += d));
    child.on('error', e => resolve({ code: 127, err: e.message }));
    child.on('close', code => resolve({ code: code ?? 1, err }));
  });
}

/** The watchdog: `umount -l <dir>` once this process is gone. */
function startWatchdog(umount: string, dir: string): ChildProcess {
  const script = 'trap "" INT HUP TERM QUIT; while read -r _; do :; done; exec "$0" -l -- "$1" 2>/dev/null';
  const child = spawn('/bin/sh', ['-c', script, umount, dir], { stdio: ['pipe', 'ignore', 'ignore'], detached: true });
  child.on('error', () => {});
  child.stdin!.on('error', () => {});
  child.unref();
  (child.stdin as unknown as { unref?: () => void }).unref?.();
  return child;
}

/** Mount `opts.root` on the (checked) mount point and serve it. */
export async function mountKernel(mountpoint: string, opts: MountOptions): Promise<Mounted> {
  const umount = which('umount') ?? '/bin/umount';
  const mount = which('mount') ?? '/bin/mount';
  let fd: number;
  try {
    fd = openSync('/dev/fuse', 'r+');
  } catch (e) {
    throw new MountError(`cannot open /dev/fuse: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  const options = kernelOptionString(opts);
  // -i: no /sbin/mount.fuse.* helper; the type's subtype names us in mountinfo.
  const r = await run(mount, ['-i', '-t', FSTYPE, '-o', options, opts.fsname ?? 'mdevfs', mountpoint], fd);
  if (r.code !== 0) {
    closeSync(fd);
    const why = firstLine(r.err.trim().replace(/^mount: /, ''));
    throw new MountError(`cannot mount ${mountpoint}: ${why || `mount exited with ${r.code}`}`);
  }
  const watchdog = opts.autoUnmount === false ? undefined : startWatchdog(umount, mountpoint);
  const fs = new TreeFs(opts.root, { trace: opts.trace, view: opts.view });
  let session: Session;
  try {
    session = new Session(fd, fs, opts.root, { trace: opts.trace, log: opts.trace, cache: cachePolicy(opts.cache) });
  } catch (e) {
    // MDEVFS_FUSE_READER=loop where the event loop cannot read: leave nothing mounted.
    await run(umount, ['-l', '--', mountpoint]);
    closeSync(fd);
    throw new MountError(e instanceof Error ? e.message : String(e));
  }
  const close = (): void => session.close();
  void session.ended.then(() => {
    // Unmounted from outside: nothing left for the watchdog to do.
    watchdog?.kill('SIGKILL');
    close();
  });

  let unmounting: Promise<void> | undefined;
  return {
    mountpoint,
    options,
    unmount(): Promise<void> {
      unmounting ??= (async () => {
        watchdog?.kill('SIGKILL');
        if ((await run(umount, ['-l', '--', mountpoint])).code !== 0) await forceUnmount(mountpoint);
        // The connection ends (ENODEV) once the last user of the mount is gone; do not wait for stragglers.
        await Promise.race([session.ended, new Promise(r => setTimeout(r, 1000).unref())]);
        close();
      })();
      return unmounting;
    },
    settled: () => session.flushed() ?? Promise.resolve(),
    async isMounted(): Promise<boolean> {
      return (await mountsAt(mountpoint)).some(m => m.fstype === FSTYPE);
    },
  };
}
