/**
 * The benchmark client: test/bench/client.c compiled with gcc into a temporary
 * directory at bench time, or test/bench/client.py when gcc is missing or fails
 * (BENCH_CLIENT=python forces it). It always runs as a separate process.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));

export interface Client {
  /** 'C (gcc -O2)' or 'python3 (no gcc)'. */
  kind: string;
  argv: string[];
  /** Files to delete afterwards (never a recursive removal). */
  files: string[];
}

export interface Measured {
  ops: number;
  sec: number;
}

function exec(file: string, args: string[], timeoutMs: number): Promise<{ ok: boolean; out: string }> {
  return new Promise(resolve => {
    execFile(file, args, { timeout: timeoutMs }, (err, stdout, stderr) => resolve({ ok: !err, out: `${stdout}${stderr}`.trim() }));
  });
}

/** Compile client.c into `dir`, or fall back to python3. */
export async function prepareClient(dir: string): Promise<Client> {
  const forcePython = process.env.BENCH_CLIENT === 'python';
  let why = 'BENCH_CLIENT=python';
  if (!forcePython) {
    const bin = path.join(dir, 'bench-client');
    const r = await exec('gcc', ['-O2', '-Wall', '-o', bin, path.join(HERE, 'client.c')], 60_000);
    if (r.ok) return { kind: 'C (gcc -O2)', argv: [bin], files: [bin] };
    why = `gcc failed: ${r.out.split('\n')[0] ?? ''}`;
  }
  const py = await exec('python3', ['--version'], 10_000);
  if (!py.ok) throw new Error(`no client: ${why}, and python3 is not available either`);
  return { kind: `python3 (${why})`, argv: ['python3', path.join(HERE, 'client.py')], files: [] };
}

/** Clients now running (the runner kills them on an interrupt). */
export const activeClients = new Set<ChildProcess>();

/** Run the client once; rejects with its stderr on failure. */
export function runClient(c: Client, args: string[], timeoutMs: number): Promise<Measured> {
  return new Promise((resolve, reject) => {
    const p = spawn(c.argv[0]!, [...c.argv.slice(1), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    activeClients.add(p);
    let out = '';
    let err = '';
    p.stdout.on('data', d => {
      out += d;
    });
    p.stderr.on('data', d => {
      err += d;
    });
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('error', e => {
      clearTimeout(timer);
      activeClients.delete(p);
      reject(e);
    });
    p.on('close', (code, signal) => {
      clearTimeout(timer);
      activeClients.delete(p);
      const m = /^ops (\d+) sec ([\d.]+)$/m.exec(out);
      if (code === 0 && m) resolve({ ops: Number(m[1]), sec: Number(m[2]) });
      else reject(new Error(`client ${args[0]} failed (${signal ?? `exit ${code}`}): ${err.trim() || out.trim()}`));
    });
  });
}
