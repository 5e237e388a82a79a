/**
 * The event-loop reader: /dev/fuse wrapped in Node's internal `Pipe` handle
 * (`process.binding('pipe_wrap')`), read by libuv in the main thread's event
 * loop, so a request is served where it is read, with no thread hand-off: the
 * faster way (docs/fuse.md#reading-requests, test/bench). It rests on a
 * deprecated internal, so reader.ts checks it works and falls back to the
 * worker reader otherwise.
 *
 * libuv reads a stream into 64 KiB buffers (uv__read() in src/unix/stream.c
 * asks for 64 * 1024), one request per read(2); the kernel refuses a read
 * smaller than fuse_in_header + fuse_write_in + max_write (fs/fuse/dev.c
 * fuse_dev_do_read()), so INIT offers MAX_WRITE_LOOP.
 */
import { getSystemErrorName } from 'node:util';
import type { Reader } from './reader.js';

/** 60 KiB: page-sized, and with the 80 bytes of headers within libuv's 64 KiB buffer. */
export const MAX_WRITE_LOOP = 60 * 1024;

/** The part of Node's internal `Pipe` (src/pipe_wrap.cc, src/stream_wrap.cc) used here. */
interface PipeHandle {
  open(fd: number): number;
  readStart(): number;
  readStop(): number;
  close(cb?: () => void): void;
  onread: (buf: ArrayBuffer | undefined) => void;
}

interface PipeBinding {
  Pipe: new (type: number) => PipeHandle;
  constants: { SOCKET: number };
}

interface StreamBinding {
  streamBaseState: Int32Array;
  kReadBytesOrError: number;
  kArrayBufferOffset: number;
}

type Binding = (name: string) => unknown;

const UV_EOF = -4095;

/** Node's internals, or why they cannot be used. */
function internals(): { pipe: PipeBinding; stream: StreamBinding } | string {
  try {
    const binding = (process as unknown as { binding?: Binding }).binding;
    if (typeof binding !== 'function') return 'process.binding is gone';
    const pipe = binding('pipe_wrap') as PipeBinding;
    const stream = binding('stream_wrap') as StreamBinding;
    if (typeof pipe?.Pipe !== 'function' || typeof pipe.constants?.SOCKET !== 'number') return 'pipe_wrap has no Pipe';
    if (!(stream?.streamBaseState instanceof Int32Array)) return 'stream_wrap has no streamBaseState';
    return { pipe, stream };
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}

/** Start reading `fd` in the event loop, or say why it cannot be done (nothing started then). */
export function startLoopReader(fd: number, onRequest: (msg: Uint8Array) => void): Reader | string {
  const int = internals();
  if (typeof int === 'string') return int;
  const { Pipe, constants } = int.pipe;
  const { streamBaseState: state, kReadBytesOrError, kArrayBufferOffset } = int.stream;
  let handle: PipeHandle;
  try {
    handle = new Pipe(constants.SOCKET);
    // uv_pipe_open() makes the fd non-blocking; replies are still written with writeSync (never EAGAIN on /dev/fuse).
    const err = handle.open(fd);
    if (err !== 0) {
      handle.close();
      return `Pipe.open: ${getSystemErrorName(err)}`;
    }
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
  let finish!: (why: string) => void;
  const ended = new Promise<string>(resolve => (finish = resolve));
  let phase: 'reading' | 'stopped' | 'closed' = 'reading';
  handle.onread = (buf: ArrayBuffer | undefined): void => {
    const n = state[kReadBytesOrError];
    if (n > 0 && buf) {
      // A fresh buffer per read (Node allocates one for each): the request may keep it.
      onRequest(new Uint8Array(buf, state[kArrayBufferOffset], n));
      return;
    }
    if (n === 0) return;
    // ENOENT (the request was dropped while we read it, fs/fuse/dev.c) or EINTR: as the worker
    // reader, go on; libuv stopped reading on the error (uv__read()), so open the handle on the fd again.
    if ((n === -2 || n === -4) && handle.open(fd) === 0 && handle.readStart() === 0) return;
    phase = 'stopped';
    finish(n === UV_EOF ? 'EOF' : getSystemErrorName(n));
  };
  const err = handle.readStart();
  // Not closed: closing the handle would close the fd, which the worker reader is to use.
  if (err !== 0) return `Pipe.readStart: ${getSystemErrorName(err)}`;
  const stop = (): void => {
    if (phase !== 'reading') return;
    phase = 'stopped';
    handle.readStop();
    finish('stopped');
  };
  return {
    kind: 'loop',
    maxWrite: MAX_WRITE_LOOP,
    ended,
    stop,
    close(): void {
      stop();
      if (phase === 'closed') return;
      phase = 'closed';
      handle.close(); // closes the fd (uv__stream_close())
    },
  };
}
