/**
 * The control socket (docs/control.md): a UNIX stream socket in a directory
 * only the daemon's user can enter (control-path.ts), file mode 0600. Each
 * connection carries one request line and gets one reply line, then the
 * daemon closes it; after `{"op":"events"}` and its reply, the daemon writes
 * one line per uevent until the client hangs up.
 */
import { promises as fsp } from 'node:fs';
import net from 'node:net';
import type { Uevent } from '../core/api.js';
import type { MdevCore } from '../core/core.js';
import { errorMessage, firstLine } from '../core/errno.js';
import { ensureControlDir } from './control-path.js';
import { handleLine, type Reply } from './control-protocol.js';
import { UserError } from './errors.js';

/** A request longer than this is refused (no request needs a fraction of it). */
const MAX_REQUEST = 64 * 1024;

export interface ControlServer {
  readonly path: string;
  close(): Promise<void>;
}

/** A socket file left by a daemon that died: nobody answers on it. */
async function clearStale(socket: string): Promise<void> {
  let st;
  try {
    st = await fsp.lstat(socket);
  } catch {
    return;
  }
  if (!st.isSocket()) throw new UserError(`control socket: ${socket} exists and is not a socket`);
  const live = await new Promise<boolean>(resolve => {
    const c = net.connect(socket);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
  if (live) throw new UserError(`control socket: another daemon answers on ${socket}`);
  await fsp.unlink(socket);
}

function serveConnection(core: MdevCore, conn: net.Socket, streams: Set<net.Socket>, settled: () => Promise<void>): void {
  let buf = '';
  let done = false;
  const reply = (r: Reply, end: boolean): void => {
    conn.write(`${JSON.stringify(r)}\n`);
    if (end) conn.end();
  };
  conn.setEncoding('utf8');
  conn.on('error', () => conn.destroy());
  conn.on('data', (chunk: string) => {
    if (done) return;
    buf += chunk;
    const nl = buf.indexOf('\n');
    if (nl < 0) {
      if (buf.length > MAX_REQUEST) {
        done = true;
        reply({ ok: false, errno: 'EMSGSIZE', message: `a request is one line of at most ${MAX_REQUEST} bytes` }, true);
      }
      return;
    }
    done = true;
    const line = buf.slice(0, nl);
    if (isEventsRequest(line)) {
      streamEvents(core, conn, streams);
      return;
    }
    // The reply waits until the mount's caches have heard of the change (docs/fuse.md#caching).
    void handleLine(core, line).then(async r => {
      await settled().catch(() => {});
      reply(r, true);
    });
  });
}

function isEventsRequest(line: string): boolean {
  try {
    const req = JSON.parse(line) as { op?: unknown };
    return req !== null && typeof req === 'object' && req.op === 'events';
  } catch {
    return false;
  }
}

/** Every uevent from now on, one `{"uevent":{…}}` line each, in the core's order. */
function streamEvents(core: MdevCore, conn: net.Socket, streams: Set<net.Socket>): void {
  const listener = (ev: Uevent): void => {
    conn.write(`${JSON.stringify({ uevent: ev })}\n`);
  };
  core.on('uevent', listener);
  streams.add(conn);
  conn.on('close', () => {
    core.off('uevent', listener);
    streams.delete(conn);
  });
  // Subscribed before the reply: whatever the client does after reading it is seen.
  conn.write(`${JSON.stringify({ ok: true })}\n`);
}

/**
 * Listen on `socket` for `core`; refuses an unsafe directory or a socket another daemon answers on.
 * `settled` resolves once the mount has pushed the changes made so far to the kernel's caches.
 */
export async function startControlSocket(
  core: MdevCore,
  socket: string,
  settled: () => Promise<void> = () => Promise.resolve(),
): Promise<ControlServer> {
  await ensureControlDir(socket);
  await clearStale(socket);
  const streams = new Set<net.Socket>();
  const conns = new Set<net.Socket>();
  const server = net.createServer(conn => {
    conns.add(conn);
    conn.on('close', () => conns.delete(conn));
    serveConnection(core, conn, streams, settled);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', e => reject(new UserError(`control socket ${socket}: ${firstLine(errorMessage(e))}`)));
    server.listen(socket, () => resolve());
  });
  // Belt and braces: the directory (0700) already keeps everyone else out.
  await fsp.chmod(socket, 0o600);
  let closing: Promise<void> | undefined;
  return {
    path: socket,
    close: () =>
      (closing ??= (async () => {
        const closed = new Promise<void>(resolve => server.close(() => resolve()));
        for (const c of conns) c.destroy();
        await closed;
        await fsp.unlink(socket).catch(() => {});
      })()),
  };
}
