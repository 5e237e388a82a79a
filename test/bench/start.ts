/**
 * The start figure: wall time of a whole `bin/mdevfs run -- true` as a user
 * starts it (the default drivers, every namespace mount, the exit) against
 * `umockdev-run -- true`, the LD_PRELOAD tool a test harness would otherwise
 * use, interleaved in the same run. umockdev-run missing: the figure is
 * skipped with a note (apt-get install umockdev). MDEVFS_START_BEFORE=<another
 * clone> adds its bin/mdevfs as a third series, for a before/after figure.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { REPO } from './servers.js';

export interface StartFigures {
  mdevfs: number[];
  /** MDEVFS_START_BEFORE's bin/mdevfs. */
  before?: number[];
  /** Absent when umockdev-run is not installed. */
  umockdev?: number[];
  note?: string;
}

function wallMs(argv: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const p = spawn(argv[0]!, argv.slice(1), { cwd: REPO, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', d => (err += d));
    const timer = setTimeout(() => p.kill('SIGKILL'), 60_000);
    p.on('error', reject);
    p.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(Number(process.hrtime.bigint() - t0) / 1e6);
      else reject(new Error(`${argv.join(' ')}: ${signal ?? `exit ${code}`} ${err.trim()}`));
    });
  });
}

const which = (name: string): string | undefined =>
  (process.env.PATH ?? '/usr/bin:/bin')
    .split(':')
    .map(d => path.join(d, name))
    .find(p => existsSync(p));

/** `reps` interleaved runs of each (order alternating), after one untimed warm-up each. */
export async function measureStart(reps: number, say: (s: string) => void): Promise<StartFigures> {
  const mdevfs = [path.join(REPO, 'bin/mdevfs'), 'run', '--', 'true'];
  const beforeDir = process.env.MDEVFS_START_BEFORE;
  const before = beforeDir ? [path.join(beforeDir, 'bin/mdevfs'), 'run', '--', 'true'] : undefined;
  const umockdevRun = which('umockdev-run');
  const umockdev = umockdevRun ? [umockdevRun, '--', 'true'] : undefined;
  const out: StartFigures = {
    mdevfs: [],
    ...(umockdev ? { umockdev: [] } : { note: 'umockdev-run not found (apt-get install umockdev): no baseline' }),
    ...(before ? { before: [] } : {}),
  };
  await wallMs(mdevfs);
  if (umockdev) await wallMs(umockdev);
  if (before) await wallMs(before);
  for (let r = 0; r < reps; r++) {
    const runs: Array<['mdevfs' | 'umockdev' | 'before', string[]]> = [['mdevfs', mdevfs]];
    if (umockdev) runs[r % 2 ? 'unshift' : 'push'](['umockdev', umockdev]);
    if (before) runs[r % 2 ? 'push' : 'unshift'](['before', before]);
    for (const [name, argv] of runs) out[name]!.push(await wallMs(argv));
    say(
      `  start, rep ${r + 1}: mdevfs run -- true ${out.mdevfs[r]!.toFixed(0)} ms${umockdev ? `, umockdev-run -- true ${out.umockdev![r]!.toFixed(1)} ms` : ''}` +
        (before ? `, before (${beforeDir}) ${out.before![r]!.toFixed(0)} ms` : ''),
    );
  }
  return out;
}

/** One line for the report: medians, and the ratio when there is a baseline. */
export function startLine(f: StartFigures, median: (xs: number[]) => number): string {
  const m = median(f.mdevfs);
  const b = f.before ? `; before: ${median(f.before).toFixed(0)} ms, ratio ${(median(f.before) / m).toFixed(2)}` : '';
  if (!f.umockdev) return `start, whole process: mdevfs run -- true X = ${m.toFixed(0)} ms (${f.note})${b}`;
  const u = median(f.umockdev);
  return `start, whole process: mdevfs run -- true X = ${m.toFixed(0)} ms, umockdev-run -- true Y = ${u.toFixed(1)} ms, ratio X/Y ${(m / u).toFixed(1)} (a time)${b}`;
}

// `node --import tsx test/bench/start.ts [reps]`: this figure alone.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const say = (s: string) => process.stdout.write(`${s}\n`);
  const reps = Number(process.argv[2] ?? 10);
  const mid = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
  void measureStart(reps, say).then(f => say(startLine(f, mid)));
}
