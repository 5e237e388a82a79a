/**
 * How requests are read from /dev/fuse (docs/fuse.md#reading-requests): in
 * the main thread's event loop through a Node internal when it works
 * (loop-reader.ts, faster), else by a worker thread's blocking read loop
 * (worker-reader.ts, supported API). `MDEVFS_FUSE_READER=loop|worker` forces
 * one (tests, benchmarks); `loop` then fails if the internal cannot be used.
 */
import { startLoopReader } from './loop-reader.js';
import type { Reader, ReaderKind } from './reader.js';
import { startWorkerReader } from './worker-reader.js';

export interface ReaderOptions {
  /** A regular file's node id the kernel holds, to wake a blocked worker on stop(). */
  wakeNode: () => number | undefined;
  /** Told which reader serves, and why not the event loop's (the CLI's --verbose). */
  log?: (message: string) => void;
  /** Default: $MDEVFS_FUSE_READER, else the event loop's if it works. */
  kind?: ReaderKind;
}

export function startReader(fd: number, onRequest: (msg: Uint8Array) => void, opts: ReaderOptions): Reader {
  const want = opts.kind ?? readerFromEnv();
  if (want !== 'worker') {
    const r = startLoopReader(fd, onRequest);
    if (typeof r !== 'string') {
      opts.log?.('kernel engine: reading /dev/fuse in the event loop');
      return r;
    }
    if (want === 'loop') throw new Error(`cannot read /dev/fuse in the event loop: ${r}`);
    opts.log?.(`kernel engine: reading /dev/fuse in a worker thread (the event loop cannot: ${r})`);
  } else {
    opts.log?.('kernel engine: reading /dev/fuse in a worker thread (MDEVFS_FUSE_READER=worker)');
  }
  return startWorkerReader(fd, onRequest, opts.wakeNode);
}

function readerFromEnv(): ReaderKind | undefined {
  const v = process.env.MDEVFS_FUSE_READER;
  return v === 'loop' || v === 'worker' ? v : undefined;
}
