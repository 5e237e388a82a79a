/**
 * A client of the control socket (docs/control.md), for `mdevfs ctl` and for
 * Node tests: `await ControlClient.forMount('/tmp/sys')`, or
 * `ControlClient.fromEnv()` inside `mdevfs run`. A refused request rejects
 * with an MdevError carrying the daemon's errno.
 */
import { promises as fsp } from 'node:fs';
import net from 'node:net';
import type { Uevent } from '../core/api.js';
import { MdevError, isErrnoName } from '../core/errno.js';
import type { Fault, FaultOp, FaultTarget } from '../core/faults.js';
import type { ControlState } from '../core/control.js';
import { CONTROL_ENV, checkControlSocket, mountControlSocket } from './control-path.js';
import { UserError } from './errors.js';

type Obj = Record<string, unknown>;

export interface EventStream {
  close(): void;
  /** Settles when the daemon hangs up (or close() is called). */
  readonly closed: Promise<void>;
}

function refused(r: Obj): MdevError {
  const errno = isErrnoName(r.errno) ? r.errno : 'EIO';
  return new MdevError(errno, typeof r.message === 'string' ? r.message : errno);
}

export class ControlClient {
  constructor(readonly socket: string) {}

  /** The daemon serving the tree mounted at `dir` (`mdevfs mount <dir>`). */
  static async forMount(dir: string): Promise<ControlClient> {
    let real: string;
    try {
      real = await fsp.realpath(dir);
    } catch (e) {
      throw new UserError(`--at ${dir}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    return new ControlClient(mountControlSocket(real));
  }

  /** The run's daemon, from MDEVFS_CTL (set by `mdevfs run` for its command). */
  static fromEnv(env: NodeJS.ProcessEnv = process.env): ControlClient {
    const socket = env[CONTROL_ENV];
    if (!socket)
      throw new UserError(`no daemon to control: ${CONTROL_ENV} is not set (inside mdevfs run it is; for a mount give --at <dir>)`);
    return new ControlClient(socket);
  }

  #connect(req: Obj, onLine: (r: Obj, conn: net.Socket) => void): Promise<net.Socket> {
    return checkControlSocket(this.socket).then(
      () =>
        new Promise<net.Socket>((resolve, reject) => {
          const conn = net.connect(this.socket);
          let buf = '';
          conn.setEncoding('utf8');
          conn.once('error', e => {
            const code = (e as NodeJS.ErrnoException).code;
            reject(
              new UserError(
                `control socket ${this.socket}: ${code ?? e.message}${code === 'EACCES' ? ' (only its owner may use it)' : ''}`,
              ),
            );
          });
          conn.once('connect', () => {
            conn.write(`${JSON.stringify(req)}\n`);
            resolve(conn);
          });
          conn.on('data', (chunk: string) => {
            buf += chunk;
            let nl;
            while ((nl = buf.indexOf('\n')) >= 0) {
              const line = buf.slice(0, nl);
              buf = buf.slice(nl + 1);
              onLine(JSON.parse(line) as Obj, conn);
            }
          });
        }),
    );
  }

  /** One request, its reply's fields (without `ok`). */
  async request(req: Obj): Promise<Obj> {
    let settle!: { resolve: (r: Obj) => void; reject: (e: unknown) => void };
    const reply = new Promise<Obj>((resolve, reject) => (settle = { resolve, reject }));
    const conn = await this.#connect(req, (r, c) => {
      c.end();
      if (r.ok === true) settle.resolve(r);
      else settle.reject(refused(r));
    });
    conn.once('close', () => settle.reject(new UserError(`control socket ${this.socket}: closed without a reply`)));
    const rest = await reply;
    delete rest.ok;
    return rest;
  }

  async unplug(parent: string): Promise<void> {
    await this.request({ op: 'unplug', parent });
  }
  async plug(parent: string): Promise<void> {
    await this.request({ op: 'plug', parent });
  }
  /** The next `count` (default 1) matching calls of `call` fail with `errno`. */
  async fail(call: FaultOp, errno: string, filters: FaultTarget & { count?: number } = {}): Promise<Fault> {
    return (await this.request({ op: 'fail', call, errno, ...filters })).fault as Fault;
  }
  /** The next `count` (default 1) matching calls of `call` wait `ms` first. */
  async delay(call: FaultOp, ms: number, filters: FaultTarget & { count?: number; errno?: string } = {}): Promise<Fault> {
    return (await this.request({ op: 'delay', call, ms, ...filters })).fault as Fault;
  }
  async clearFaults(id?: number): Promise<void> {
    await this.request({ op: 'clear-faults', ...(id === undefined ? {} : { id }) });
  }
  /** `type` shows `available` instances; another tenant holds the rest. Returns what it now shows. */
  async setAvailable(type: string, available: number, parent?: string): Promise<number> {
    return (await this.request({ op: 'set-available', type, available, ...(parent ? { parent } : {}) })).available as number;
  }
  async state(): Promise<ControlState> {
    return (await this.request({ op: 'state' })).state as ControlState;
  }

  /** Every uevent from now on; resolves once the daemon has subscribed. */
  async events(onEvent: (ev: Uevent) => void): Promise<EventStream> {
    let subscribed!: { resolve: () => void; reject: (e: unknown) => void };
    const ready = new Promise<void>((resolve, reject) => (subscribed = { resolve, reject }));
    const conn = await this.#connect({ op: 'events' }, r => {
      if ('uevent' in r) onEvent(r.uevent as Uevent);
      else if (r.ok === true) subscribed.resolve();
      else subscribed.reject(refused(r));
    });
    const closed = new Promise<void>(resolve => conn.once('close', () => resolve()));
    void closed.then(() => subscribed.reject(new UserError(`control socket ${this.socket}: closed`)));
    await ready;
    return { close: () => conn.destroy(), closed };
  }
}
