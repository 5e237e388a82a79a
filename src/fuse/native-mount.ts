/**
 * The fuse-native engine's mount: libfuse 2 through fuse-native, with the
 * whole libfuse option string (docs/fuse.md#mount-options). fuse-native is
 * imported lazily, so a missing libfuse.so.2 becomes one clear line instead
 * of a dlopen stack trace.
 */
import type FuseType from 'fuse-native';
import { errorMessage, firstLine } from '../core/errno.js';
import { MountError, forceUnmount, mountsAt, type MountOptions, type Mounted } from './mount-common.js';
import { createOperations } from './ops.js';
import { fusermountRefusal } from './programs.js';

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

/** Mount `opts.root` on the checked mount point. */
export async function mountNative(pre: { Fuse: FuseCtor; fusermount: string; mountpoint: string }, opts: MountOptions): Promise<Mounted> {
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
    // No kernel caching: nothing to wait for.
    settled: () => Promise.resolve(),
    async isMounted(): Promise<boolean> {
      return (await mountsAt(mountpoint)).some(m => m.fstype === 'fuse.mdevfs');
    },
  };
}
