// Raw syscalls against a mount, from a child python3 process (never from the
// test process synchronously), so each step reports the exact errno.
import { spawn } from 'node:child_process';
import { track } from './daemon.js';
import { PYTHON } from './util.js';

const PY = String.raw`
import os, sys, json, errno, time
steps = json.loads(sys.argv[1])
fds = []
out = []
def flags(s):
    f = 0
    for part in s.split('|'):
        part = part.strip()
        if part:
            f |= getattr(os, part)
    return f
for st in steps:
    op = st[0]
    try:
        if op == 'open':
            fds.append(os.open(st[1], flags(st[2]), 0o644)); r = len(fds) - 1
        elif op == 'write':
            r = os.write(fds[st[1]], bytes.fromhex(st[2]))
        elif op == 'pwrite':
            r = os.pwrite(fds[st[1]], bytes.fromhex(st[2]), st[3])
        elif op == 'read':
            r = os.read(fds[st[1]], st[2]).hex()
        elif op == 'pread':
            r = os.pread(fds[st[1]], st[2], st[3]).hex()
        elif op == 'close':
            os.close(fds[st[1]]); r = 0
        elif op == 'access':
            r = os.access(st[1], flags(st[2]) if st[2] != 'F_OK' else os.F_OK)
        elif op in ('stat', 'lstat', 'fstat'):
            s = os.fstat(fds[st[1]]) if op == 'fstat' else (os.stat(st[1]) if op == 'stat' else os.lstat(st[1]))
            r = {'mode': s.st_mode, 'size': s.st_size, 'nlink': s.st_nlink, 'ino': s.st_ino, 'uid': s.st_uid, 'gid': s.st_gid}
        elif op == 'readlink':
            r = os.readlink(st[1])
        elif op == 'listdir':
            r = sorted(os.listdir(st[1]))
        elif op == 'mkdir':
            os.mkdir(st[1]); r = 0
        elif op == 'rmdir':
            os.rmdir(st[1]); r = 0
        elif op == 'unlink':
            os.unlink(st[1]); r = 0
        elif op == 'rename':
            os.rename(st[1], st[2]); r = 0
        elif op == 'symlink':
            os.symlink(st[1], st[2]); r = 0
        elif op == 'link':
            os.link(st[1], st[2]); r = 0
        elif op == 'truncate':
            os.truncate(st[1], st[2]); r = 0
        elif op == 'ftruncate':
            os.ftruncate(fds[st[1]], st[2]); r = 0
        elif op == 'chmod':
            os.chmod(st[1], st[2]); r = 0
        elif op == 'mknod':
            os.mknod(st[1], st[2] if len(st) > 2 else 0o100644); r = 0
        elif op == 'sleep':
            time.sleep(st[1]); r = 0
        else:
            raise Exception('unknown op ' + op)
        out.append({'ok': r})
    except OSError as e:
        out.append({'errno': errno.errorcode.get(e.errno, str(e.errno))})
    except IndexError:
        out.append({'errno': 'EBADF'})
print(json.dumps(out))
`;

export type Step =
  | ['open', string, string]
  | ['write', number, string | Buffer]
  | ['pwrite', number, string | Buffer, number]
  | ['read', number, number]
  | ['pread', number, number, number]
  | ['close', number]
  | ['access', string, string]
  | ['stat' | 'lstat' | 'readlink' | 'listdir' | 'mkdir' | 'rmdir' | 'unlink' | 'mknod', string]
  | ['mknod', string, number]
  | ['fstat', number]
  | ['rename' | 'symlink' | 'link', string, string]
  | ['truncate', string, number]
  | ['ftruncate', number, number]
  | ['chmod', string, number]
  | ['sleep', number];

export type StepResult = { ok: unknown; errno?: undefined } | { ok?: undefined; errno: string };

/** Run the steps in one python3 process; fds are referred to by the index of their open step's result. */
export function sys(steps: Step[], timeoutMs = 30_000): Promise<StepResult[]> {
  const enc = steps.map(s => {
    if (s[0] === 'write' || s[0] === 'pwrite') {
      const data = typeof s[2] === 'string' ? Buffer.from(s[2], 'latin1') : s[2];
      return [s[0], s[1], data.toString('hex'), ...(s[0] === 'pwrite' ? [s[3]] : [])];
    }
    return s;
  });
  return new Promise((resolve, reject) => {
    // Not execFile: a python stuck on a wedged mount cannot exit until the
    // daemon dies, and the test must still get to its teardown.
    const child = spawn(PYTHON, ['-c', PY, JSON.stringify(enc)], { stdio: ['ignore', 'pipe', 'pipe'] });
    track(child);
    let stdout = '';
    let stderr = '';
    let done = false;
    const timer = setTimeout(() => {
      if (done) return;
      done = true;
      try {
        child.kill('SIGKILL');
      } catch {
        /* gone */
      }
      reject(new Error(`python3 timed out after ${timeoutMs} ms (is the mount wedged?): ${JSON.stringify(steps).slice(0, 200)}`));
    }, timeoutMs);
    child.stdout!.on('data', d => {
      stdout += d;
    });
    child.stderr!.on('data', d => {
      stderr += d;
    });
    child.on('close', code => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (code !== 0) return reject(new Error(`python3 failed (${code}): ${stderr}`));
      const res = JSON.parse(stdout) as StepResult[];
      // hex → text for reads
      steps.forEach((s, i) => {
        const r = res[i];
        if (r && r.errno === undefined && (s[0] === 'read' || s[0] === 'pread')) {
          (r as { ok: unknown }).ok = Buffer.from(r.ok as string, 'hex').toString('latin1');
        }
      });
      resolve(res);
    });
  });
}

/** open + one write + close: the write's count, or the failing step's errno name. */
export async function writeOnce(path: string, data: string | Buffer, flags = 'O_WRONLY|O_TRUNC'): Promise<number | string> {
  const r = await sys([
    ['open', path, flags],
    ['write', 0, data],
    ['close', 0],
  ]);
  if (r[0]!.errno) return r[0]!.errno;
  if (r[1]!.errno) return r[1]!.errno;
  return r[1]!.ok as number;
}

/** open + read(4096) + close: the text, or the failing step's errno name as { errno }. */
export async function readOnce(path: string): Promise<string | { errno: string }> {
  const r = await sys([
    ['open', path, 'O_RDONLY'],
    ['read', 0, 65536],
    ['close', 0],
  ]);
  if (r[0]!.errno) return { errno: r[0]!.errno };
  if (r[1]!.errno) return { errno: r[1]!.errno };
  return r[1]!.ok as string;
}

/** A single errno-or-value step. */
export async function one(step: Step): Promise<unknown> {
  const [r] = await sys([step]);
  return r!.errno !== undefined ? { errno: r!.errno } : r!.ok;
}
