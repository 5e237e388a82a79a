/**
 * The base of an overlay: a real directory (the host's /sys in `mdevfs run`),
 * read through a descriptor opened once, so it stays reachable after the
 * tree is mounted over it, and a path in it never leads back into our own
 * mount. Read-only: nothing here writes.
 *
 * Metadata calls are synchronous on purpose: they are one syscall each on a
 * file system that is not ours, cheaper than a trip to libuv's thread pool.
 * Reads are asynchronous, because a host attribute's show may sleep (a
 * sensor, a PCI config read) and must not stall every other request.
 */
import {
  closeSync,
  constants,
  fstatSync,
  lstatSync,
  openSync,
  promises as fsp,
  readdirSync,
  readlinkSync,
  read,
  type Stats,
} from 'node:fs';

export class BaseDir {
  readonly #fd: number;
  /** Where the descriptor's directory is reachable by path, whatever covers it now. */
  readonly #at: string;

  /** The device of the directory itself (its file system's, for telling submounts apart). */
  readonly dev: number;

  private constructor(
    fd: number,
    /** The path it was opened at, for messages. */
    readonly origin: string,
  ) {
    this.#fd = fd;
    this.#at = `/proc/self/fd/${fd}`;
    this.dev = fstatSync(fd).dev;
  }

  /** The descriptor itself (to hand to a child process). */
  get fd(): number {
    return this.#fd;
  }

  /** Open `dir` (a directory, followed if a link, as the user named it). Throws the open's error. */
  static open(dir: string): BaseDir {
    const fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
    return new BaseDir(fd, dir);
  }

  /** `rel` ('/a/b', '' or '/' for the top) as a path through the descriptor. */
  #path(rel: string): string {
    return rel === '/' || rel === '' ? this.#at + '/.' : this.#at + rel;
  }

  /** lstat, or undefined when there is nothing there. */
  lstat(rel: string): Stats | undefined {
    try {
      return lstatSync(this.#path(rel), { throwIfNoEntry: false });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
      throw e;
    }
  }

  /** The names in a directory (no '.' or '..'), in the base's own order. */
  names(rel: string): string[] {
    return readdirSync(this.#path(rel));
  }

  readlink(rel: string): string {
    return readlinkSync(this.#path(rel));
  }

  /**
   * A read-only descriptor for one open(2) of a base file. O_NONBLOCK: should
   * the name have become a FIFO since its lstat, the open must not hang the daemon.
   */
  openRead(rel: string): number {
    return openSync(this.#path(rel), constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  }

  /** pread into `buf`; resolves with the count. */
  read(fd: number, buf: Buffer, length: number, position: number): Promise<number> {
    return new Promise((resolve, reject) => {
      read(fd, buf, 0, length, position, (err, n) => (err ? reject(err) : resolve(n)));
    });
  }

  closeFile(fd: number): void {
    closeSync(fd);
  }

  /** Read a small file whole (asynchronously; for start-up scans). */
  readText(rel: string): Promise<string> {
    return fsp.readFile(this.#path(rel), 'utf8');
  }

  close(): void {
    try {
      closeSync(this.#fd);
    } catch {
      /* already closed */
    }
  }
}
