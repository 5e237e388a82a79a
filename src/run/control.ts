/**
 * The control channel of a run: a socketpair between the outer and the inner
 * (fd 3 in the inner). Line-free, tiny messages:
 *
 *   inner → outer   "R"            setup is done, the command starts now
 *                   "E<status>\n"  the inner exits with <status> right after
 *   outer → inner   "<SIGNAME>\n"  pass this signal on to the command
 *
 * Without "R" the namespace never came up (so a status is unshare's, not the
 * command's); without "E" the inner died instead of finishing. Signals travel
 * as messages, not kill(2), so the inner can tell a relayed SIGINT from the
 * terminal's own, which has reached the command already.
 */
import { fstatSync, writeSync } from 'node:fs';
import net from 'node:net';
import type { Readable, Writable } from 'node:stream';

export const RELAYED_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
export type RelayedSignal = (typeof RELAYED_SIGNALS)[number];

const isRelayed = (s: string): s is RelayedSignal => (RELAYED_SIGNALS as readonly string[]).includes(s);

/** The inner's end. Inert if `fd` is not a socket or pipe (e.g. started by hand). */
export class InnerControl {
  readonly #fd: number | undefined;
  #socket: net.Socket | undefined;

  constructor(fd: number | undefined) {
    let ok = false;
    if (fd !== undefined) {
      try {
        const st = fstatSync(fd);
        ok = st.isSocket() || st.isFIFO();
      } catch {
        /* not open */
      }
    }
    this.#fd = ok ? fd : undefined;
  }

  /** Call `cb` for every signal the outer relays. */
  onSignal(cb: (sig: RelayedSignal) => void): void {
    if (this.#fd === undefined || this.#socket) return;
    const socket = new net.Socket({ fd: this.#fd, readable: true, writable: false });
    socket.unref();
    socket.setEncoding('latin1');
    let buf = '';
    socket.on('data', (d: string) => {
      buf += d;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const name = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (isRelayed(name)) cb(name);
      }
    });
    socket.on('error', () => {
      /* the outer is gone */
    });
    this.#socket = socket;
  }

  #send(message: string): void {
    if (this.#fd === undefined) return;
    try {
      writeSync(this.#fd, message);
    } catch {
      /* the outer is gone (or EAGAIN on a full buffer, which these few bytes never meet) */
    }
  }

  started(): void {
    this.#send('R');
  }

  /** Synchronous, so it is out before process.exit. */
  exiting(status: number): void {
    this.#send(`E${status}\n`);
  }
}

/** The outer's end: what the inner said, and a way to relay signals. */
export class OuterControl {
  started = false;
  exitStatus: number | undefined;
  #text = '';

  constructor(private readonly stream: (Readable & Writable) | null) {
    stream?.setEncoding('latin1');
    stream?.on('data', (d: string) => {
      this.#text += d;
      if (this.#text.includes('R')) this.started = true;
      const m = /E(\d+)\n/.exec(this.#text);
      if (m) this.exitStatus = Number(m[1]);
    });
    stream?.on('error', () => {
      /* the inner is gone; its exit says the rest */
    });
  }

  relay(sig: RelayedSignal): void {
    if (this.stream && !this.stream.destroyed && this.stream.writable) this.stream.write(`${sig}\n`);
  }
}
