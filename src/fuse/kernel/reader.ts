/** What reads requests from /dev/fuse (choose-reader.ts picks one), apart so that the readers and the choice do not import each other. */

export type ReaderKind = 'loop' | 'worker';

export interface Reader {
  readonly kind: ReaderKind;
  /** The largest write the reader's buffer holds with its headers: INIT's max_write. */
  readonly maxWrite: number;
  /** Resolves when reading ends (ENODEV after unmount, or stop()), with the reason. */
  readonly ended: Promise<string>;
  /** Stop reading, even if blocked in read(2) (idempotent, synchronous). */
  stop(): void;
  /** Stop, and close the fd. */
  close(): void;
}
