// A python3 child that holds file descriptors across steps: each `do()` sends
// one step on stdin and resolves with its result (the exact errno on failure).
// For VFIO device files: the fd must live in a process other than the daemon
// and other than the test process (a synchronous call into the mount from the
// test could wedge it). Killed with SIGKILL at teardown.
import { spawn } from 'node:child_process';
import { track, type Teardownable } from './daemon.js';
import { PYTHON } from './util.js';

const PY = String.raw`
import os, sys, json, errno, fcntl, ctypes
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
fds = {}
n = 0
def flags(s):
    f = 0
    for part in s.split('|'):
        f |= getattr(os, part.strip())
    return f
for line in sys.stdin:
    st = json.loads(line)
    op = st[0]
    try:
        if op == 'open':
            fds[n] = os.open(st[1], flags(st[2]))
            r = n; n += 1
        elif op == 'pread':
            r = os.pread(fds[st[1]], st[2], st[3]).hex()
        elif op == 'pwrite':
            r = os.pwrite(fds[st[1]], bytes.fromhex(st[2]), st[3])
        elif op == 'dup':
            fds[n] = os.dup(fds[st[1]])
            r = n; n += 1
        elif op == 'close':
            os.close(fds.pop(st[1])); r = 0
        elif op == 'ioctl':
            r = fcntl.ioctl(fds[st[1]], st[2], bytes(st[3])).hex()
        elif op == 'mmap':
            # mmap(NULL, len, PROT_READ|PROT_WRITE, MAP_SHARED, fd, offset), as QEMU maps a region
            a = libc.mmap(None, st[2], 3, 1, fds[st[1]], st[3])
            if a is None or a == ctypes.c_void_p(-1).value:
                raise OSError(ctypes.get_errno(), 'mmap')
            libc.munmap(a, st[2]); r = 0
        else:
            raise Exception('unknown op ' + op)
        out = {'ok': r}
    except OSError as e:
        out = {'errno': errno.errorcode.get(e.errno, str(e.errno))}
    except KeyError:
        out = {'errno': 'EBADF'}
    sys.stdout.write(json.dumps(out) + '\n')
    sys.stdout.flush()
`;

export type HolderStep =
  | ['open', string, string]
  | ['pread', number, number, number]
  | ['pwrite', number, Buffer | string, number]
  | ['dup', number]
  | ['close', number]
  | ['ioctl', number, number, number]
  | ['mmap', number, number, number];

export type HolderResult = { ok: unknown; errno?: undefined } | { ok?: undefined; errno: string };

export interface Holder {
  readonly pid: number;
  /** One step; pread results are Buffers. Rejects if the holder died or `timeoutMs` passed. */
  do(step: HolderStep, timeoutMs?: number): Promise<HolderResult>;
  /** Resolves when the process has exited. */
  readonly exited: Promise<void>;
  kill(signal?: NodeJS.Signals): void;
}

export function startHolder(t: Teardownable): Holder {
  const child = spawn(PYTHON, ['-u', '-c', PY], { stdio: ['pipe', 'pipe', 'pipe'] });
  track(child);
  const exited = new Promise<void>(resolve => child.on('exit', () => resolve()));
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  let buf = '';
  let stderr = '';
  const waiting: Array<(line: string | Error) => void> = [];
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (d: string) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      waiting.shift()?.(line);
    }
  });
  child.stderr!.on('data', d => {
    stderr += d;
  });
  child.stdin!.on('error', () => {});
  void exited.then(() => {
    for (const w of waiting.splice(0)) w(new Error(`holder exited: ${stderr}`));
  });
  return {
    get pid() {
      return child.pid!;
    },
    exited,
    kill: (signal = 'SIGKILL') => {
      child.kill(signal);
    },
    do(step, timeoutMs = 15_000) {
      const enc =
        step[0] === 'pwrite'
          ? ['pwrite', step[1], (typeof step[2] === 'string' ? Buffer.from(step[2], 'latin1') : step[2]).toString('hex'), step[3]]
          : step;
      return new Promise<HolderResult>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`holder step timed out: ${JSON.stringify(enc)}`)), timeoutMs);
        waiting.push(line => {
          clearTimeout(timer);
          if (line instanceof Error) return reject(line);
          const r = JSON.parse(line) as HolderResult;
          if (r.errno === undefined && step[0] === 'pread') (r as { ok: unknown }).ok = Buffer.from(r.ok as string, 'hex');
          resolve(r);
        });
        child.stdin!.write(JSON.stringify(enc) + '\n');
      });
    },
  };
}
