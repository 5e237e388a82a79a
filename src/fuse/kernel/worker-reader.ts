/**
 * The worker reader: a blocking read(2) loop on /dev/fuse in a worker thread,
 * each request copied out and posted to the main thread, which serves it.
 * Supported API only, so it works on every Node from 20; the fallback when
 * the event-loop reader (loop-reader.ts) cannot be used.
 *
 * A worker blocked in read(2) cannot be stopped, and Node's process.exit()
 * waits for its workers. After an unmount the read fails with ENODEV once the
 * last user of the mount is gone; until then, stop() makes the kernel send one
 * request (the NOTIFY_REPLY of a FUSE_NOTIFY_RETRIEVE, fs/fuse/dev.c
 * fuse_notify_retrieve(): it needs a regular file the kernel holds, which a
 * process keeping the mount busy usually has open), after which the worker
 * sees the stop flag and ends.
 */
import { closeSync, writeSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { MAX_WRITE, READ_BUFFER, retrieveNothing } from './protocol.js';
import type { Reader } from './reader.js';

// CommonJS, evaluated: no file to find next to the compiled module (or the .ts one under tsx).
const WORKER = `
const { readSync } = require('node:fs');
const { parentPort, workerData } = require('node:worker_threads');
const { fd, size, stop } = workerData;
const flag = new Int32Array(stop);
const buf = Buffer.allocUnsafe(size);
for (;;) {
  let n;
  try {
    n = readSync(fd, buf, 0, size, null);
  } catch (e) {
    // ENOENT: the request was interrupted before we read it; EINTR/EAGAIN: try again.
    if (e.code === 'ENOENT' || e.code === 'EINTR' || e.code === 'EAGAIN') continue;
    parentPort.postMessage({ end: e.code || String(e) });
    break;
  }
  if (Atomics.load(flag, 0)) break;
  if (n === 0) {
    parentPort.postMessage({ end: 'EOF' });
    break;
  }
  const msg = new Uint8Array(n);
  msg.set(buf.subarray(0, n));
  parentPort.postMessage(msg, [msg.buffer]);
}
`;

/** `wakeNode`: a regular file's node id the kernel holds, for stop()'s wake-up, if any. */
export function startWorkerReader(fd: number, onRequest: (msg: Uint8Array) => void, wakeNode: () => number | undefined): Reader {
  const stopFlag = new SharedArrayBuffer(4);
  const worker = new Worker(WORKER, { eval: true, workerData: { fd, size: READ_BUFFER, stop: stopFlag } });
  // Referenced: a mount keeps its process alive until it is unmounted, as with fuse-native.
  let running = true;
  const ended = new Promise<string>(resolve => {
    worker.on('message', (m: Uint8Array | { end: string }) => {
      if (m instanceof Uint8Array) onRequest(m);
      else resolve(m.end);
    });
    worker.on('error', e => resolve(e.message));
    worker.on('exit', () => {
      running = false;
      resolve('exit');
    });
  });
  const stop = (): void => {
    if (!running) return;
    running = false;
    Atomics.store(new Int32Array(stopFlag), 0, 1);
    const id = wakeNode();
    if (id === undefined) return; // nothing to wake it with: it ends with the connection
    try {
      writeSync(fd, retrieveNothing(id));
    } catch {
      /* the connection is gone: the read has already failed */
    }
  };
  // process.exit() joins workers: never leave one blocked in read(2).
  process.once('exit', stop);
  void ended.then(() => process.removeListener('exit', stop));
  const close = (): void => {
    stop();
    try {
      closeSync(fd);
    } catch {
      /* closed */
    }
  };
  return { kind: 'worker', maxWrite: MAX_WRITE, ended, stop, close };
}
