/**
 * Types for fuse-native 2.2.6 (none exist upstream). Only what mdevfs uses,
 * written against the package's index.js. Rules the types cannot express:
 * every callback's first argument must be an integer (0, a count, or a
 * negative errno in -1..-511); each callback must be called exactly once; a
 * handler must never throw; `buf` of read/write is detached after the callback.
 */
declare module 'fuse-native' {
  namespace Fuse {
    /** What getattr reports (fuse-native's getStatArray input). Times: Date or ms. */
    interface Stat {
      mode: number;
      uid?: number;
      gid?: number;
      size?: number;
      dev?: number;
      nlink?: number;
      ino?: number;
      rdev?: number;
      blksize?: number;
      blocks?: number;
      atime?: Date | number;
      mtime?: Date | number;
      ctime?: Date | number;
    }

    interface Statfs {
      bsize?: number;
      frsize?: number;
      blocks?: number;
      bfree?: number;
      bavail?: number;
      files?: number;
      ffree?: number;
      favail?: number;
      fsid?: number;
      flag?: number;
      namemax?: number;
    }

    type Done = (code: number) => void;
    type DoneWith<T> = (code: number, value?: T) => void;

    /** The handler table (libfuse 2.9 high-level, path based). All optional. */
    interface Operations {
      init?(cb: Done): void;
      access?(path: string, mode: number, cb: Done): void;
      statfs?(path: string, cb: DoneWith<Statfs>): void;
      getattr?(path: string, cb: DoneWith<Stat>): void;
      /** Note: fuse-native calls `getattr` instead when this is defined. */
      fgetattr?(path: string, fd: number, cb: DoneWith<Stat>): void;
      flush?(path: string, fd: number, cb: Done): void;
      fsync?(path: string, datasync: number, fd: number, cb: Done): void;
      fsyncdir?(path: string, datasync: number, fd: number, cb: Done): void;
      readdir?(path: string, cb: (code: number, names?: string[], stats?: Stat[]) => void): void;
      truncate?(path: string, size: number, cb: Done): void;
      ftruncate?(path: string, fd: number, size: number, cb: Done): void;
      utimens?(path: string, atime: number, mtime: number, cb: Done): void;
      readlink?(path: string, cb: DoneWith<string>): void;
      chown?(path: string, uid: number, gid: number, cb: Done): void;
      chmod?(path: string, mode: number, cb: Done): void;
      mknod?(path: string, mode: number, dev: number, cb: Done): void;
      setxattr?(path: string, name: string, value: Buffer, position: number, flags: number, cb: Done): void;
      getxattr?(path: string, name: string, position: number, cb: DoneWith<Buffer | null>): void;
      listxattr?(path: string, cb: DoneWith<string[]>): void;
      removexattr?(path: string, name: string, cb: Done): void;
      open?(path: string, flags: number, cb: DoneWith<number>): void;
      opendir?(path: string, flags: number, cb: DoneWith<number>): void;
      /** cb(bytesRead) — 0 at end of file. */
      read?(path: string, fd: number, buf: Buffer, len: number, pos: number, cb: Done): void;
      /** cb(bytesWritten). */
      write?(path: string, fd: number, buf: Buffer, len: number, pos: number, cb: Done): void;
      release?(path: string, fd: number, cb: Done): void;
      releasedir?(path: string, fd: number, cb: Done): void;
      create?(path: string, mode: number, cb: DoneWith<number>): void;
      unlink?(path: string, cb: Done): void;
      rename?(src: string, dest: string, cb: Done): void;
      link?(src: string, dest: string, cb: Done): void;
      symlink?(target: string, path: string, cb: Done): void;
      mkdir?(path: string, mode: number, cb: Done): void;
      rmdir?(path: string, cb: Done): void;
    }

    interface Options {
      /** Per-op answer timeout in ms (default 15000), `false` for none, or per op. */
      timeout?: number | false | ({ default?: number } & { [op: string]: number | false | undefined });
      force?: boolean;
      mkdir?: boolean;
      debug?: boolean;
      allowOther?: boolean;
      allowRoot?: boolean;
      autoUnmount?: boolean;
      defaultPermissions?: boolean;
      fsname?: string;
      subtype?: string;
      [key: string]: unknown;
    }
  }

  class Fuse {
    constructor(mnt: string, ops: Fuse.Operations, opts?: Fuse.Options);
    readonly mnt: string;
    readonly opts: Fuse.Options;
    /** The -o option string handed to libfuse; override to pass raw options. */
    _fuseOptions(): string;
    mount(cb: (err: Error | null) => void): void;
    unmount(cb: (err: Error | null) => void): void;
    /** `fusermount -uz <mnt>` (replaceable). */
    static unmount(mnt: string, cb: (err: Error | null) => void): void;
    static readonly EPERM: number;
    static readonly ENOENT: number;
    static readonly EIO: number;
    static readonly EACCES: number;
  }

  export = Fuse;
}
