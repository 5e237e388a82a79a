/**
 * One FUSE connection: requests in (choose-reader.ts), replies and notifications
 * out, over /dev/fuse. The opcodes are answered in ./handlers.ts; this file
 * owns the wire discipline:
 *
 * - exactly one reply per request, except FORGET, BATCH_FORGET, INTERRUPT and
 *   NOTIFY_REPLY, which get none (fuse.h);
 * - a thrown errno becomes the reply's error, clamped to 1..511 as the kernel
 *   accepts (anything else is EIO); a reply to a request the kernel has
 *   dropped (interrupted) fails with ENOENT, and that is fine;
 * - replies are written synchronously from the main thread (they never wait
 *   on an inode lock); notifications never are: an INVAL_ENTRY may wait for
 *   the directory's lock, held by a lookup that waits for us (the deadlock
 *   docs/fuse.md#the-kernel-engine describes), so they go through libuv's
 *   threadpool and a reply that must follow them awaits `flushed()`.
 */
import { write, writeSync } from 'node:fs';
import { errnoName } from '../../core/errno.js';
import { KDir, KernfsRoot, type KNode } from '../../kernfs/index.js';
import { BaseEntry, type Entry } from '../../overlay/index.js';
import { toNegErrno } from '../errno.js';
import { pathOf, type Dirent, type TreeFs } from '../tree-fs.js';
import type { CachePolicy, ServeContext } from './context.js';
import { HANDLERS, NO_REPLY, type Answer } from './handlers.js';
import { Invalidator } from './invalidate.js';
import { NodeTable } from './nodes.js';
import { Op, parseRequest, reply, type Request } from './protocol.js';
import { startReader } from './choose-reader.js';
import type { Reader, ReaderKind } from './reader.js';

export type { CachePolicy };

export interface SessionOptions {
  /** Called for failed requests (the CLI's --verbose). */
  trace?: (message: string) => void;
  cache?: CachePolicy;
  /** Which reader (reader.ts); default: $MDEVFS_FUSE_READER, else the event loop's if it works. */
  reader?: ReaderKind;
  /** Told which reader serves (the CLI's --verbose). */
  log?: (message: string) => void;
}

const NO_CACHE: CachePolicy = Object.freeze({ entry: 0, attr: 0 });
const OP_NAMES = new Map<number, string>(Object.entries(Op).map(([k, v]) => [v, k.toLowerCase()]));

export class Session implements ServeContext {
  readonly nodes: NodeTable;
  readonly cache: CachePolicy;
  /** Open directories: the listing taken at OPENDIR, served by offset. */
  readonly dirs = new Map<number, { entries: Dirent[] }>();
  #nextDir = 1;
  /** Negotiated minor version and flags (set by INIT). */
  minor = 0;
  flags = 0;
  /** What the reader's buffer holds (INIT's max_write). */
  readonly maxWrite: number;
  readonly #reader: Reader;
  readonly #inflight = new Set<Promise<void>>();
  readonly #trace?: (m: string) => void;
  readonly #invalidator?: Invalidator;
  #unwatch?: () => void;
  readonly #dirCache: CachePolicy;
  #draining = false;

  constructor(
    readonly fd: number,
    readonly fs: TreeFs,
    root: KNode,
    opts: SessionOptions = {},
  ) {
    this.nodes = new NodeTable(root);
    // Without a whole tree to watch, nothing could be invalidated: cache nothing.
    this.cache = root instanceof KernfsRoot ? (opts.cache ?? NO_CACHE) : NO_CACHE;
    this.#dirCache = { entry: this.cache.entry, attr: 0 };
    this.#trace = opts.trace;
    // Caching needs every change pushed; MDEVFS_TEST_NO_INVALIDATE exists only to prove the tests see the difference.
    if (this.cache.entry > 0 && root instanceof KernfsRoot && !process.env.MDEVFS_TEST_NO_INVALIDATE) {
      const inv = (this.#invalidator = new Invalidator(this.nodes));
      this.#unwatch = root.watch(c => {
        inv.onChange(c);
        if (!this.#draining && inv.pending) {
          this.#draining = true;
          queueMicrotask(() => this.#drain());
        }
      });
    }
    this.#reader = startReader(fd, msg => this.#serve(msg), {
      wakeNode: () => this.nodes.anyFile(),
      log: opts.log,
      kind: opts.reader,
    });
    this.maxWrite = this.#reader.maxWrite;
  }

  /**
   * How long the kernel may keep what it is told about `e`: nothing about the
   * overlay's base, which changes unseen; a directory's name but not its
   * attributes (st_nlink and st_mtime change with every child, and a
   * notification per added child would cost every create more than the few
   * GETATTRs of directories save).
   */
  validity(e: Entry): CachePolicy {
    if (e instanceof BaseEntry) return NO_CACHE;
    return e instanceof KDir ? this.#dirCache : this.cache;
  }

  #drain(): void {
    this.#draining = false;
    if (this.#invalidator?.pending) for (const m of this.#invalidator.take()) this.notify(m);
  }

  /** Resolves when the connection has ended (the mount is gone), with the reason. */
  get ended(): Promise<string> {
    return this.#reader.ended;
  }

  /** Which reader serves. */
  get readerKind(): ReaderKind {
    return this.#reader.kind;
  }

  /** Stop reading (the worker ends even if blocked) and close the fd (idempotent). */
  close(): void {
    this.#unwatch?.();
    this.#reader.close();
  }

  allocDir(entries: Dirent[]): number {
    const fh = this.#nextDir;
    this.#nextDir = fh >= 0xfffffffe ? 1 : fh + 1;
    this.dirs.set(fh, { entries });
    return fh;
  }

  /** Queue a notification on the threadpool; never from this thread synchronously. */
  notify(msg: Buffer): void {
    const p = new Promise<void>(resolve => {
      write(this.fd, msg, err => {
        // ENOENT: the kernel holds no such name or node, nothing to forget.
        if (err && err.code !== 'ENOENT' && err.code !== 'ENODEV') this.#trace?.(`notify: ${err.code}`);
        resolve();
      });
    }).finally(() => this.#inflight.delete(p));
    this.#inflight.add(p);
  }

  /** Resolves once every notification queued so far has been written. */
  flushed(): Promise<void> | undefined {
    this.#drain();
    if (this.#inflight.size === 0) return undefined;
    return Promise.all([...this.#inflight]).then(() => {});
  }

  #serve(msg: Uint8Array): void {
    let req: Request;
    try {
      req = parseRequest(msg);
    } catch {
      return;
    }
    const h = HANDLERS[req.opcode];
    if (!h) {
      this.#send(req, -38); // ENOSYS: the kernel stops sending most such opcodes
      return;
    }
    let r: Answer | Promise<Answer>;
    try {
      r = h(this, req);
    } catch (e) {
      this.#fail(req, e);
      return;
    }
    if (r instanceof Promise) {
      r.then(
        a => this.#answer(req, a),
        e => this.#fail(req, e),
      );
    } else {
      this.#answer(req, r);
    }
  }

  #answer(req: Request, a: Answer): void {
    if (a === NO_REPLY) return;
    if (typeof a === 'number') this.#send(req, a);
    else this.#send(req, 0, a);
  }

  #fail(req: Request, e: unknown): void {
    const code = toNegErrno(e);
    if (this.#trace && !(code === -2 && (req.opcode === Op.LOOKUP || req.opcode === Op.GETATTR || req.opcode === Op.ACCESS))) {
      const e = this.nodes.get(req.nodeid);
      this.#trace(`${OP_NAMES.get(req.opcode) ?? req.opcode} ${e ? pathOf(e) : `node ${req.nodeid}`} → ${errnoName(code) ?? code}`);
    }
    this.#send(req, code);
  }

  #send(req: Request, error: number, payload?: Buffer): void {
    try {
      writeSync(this.fd, reply(req.unique, error, payload));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      // ENOENT: the request was interrupted and is gone; ENODEV: the mount is.
      if (code !== 'ENOENT' && code !== 'ENODEV') this.#trace?.(`reply to ${OP_NAMES.get(req.opcode)}: ${code}`);
    }
  }
}
