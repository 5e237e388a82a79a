/**
 * `npm run bench`: mdevfs against a bare fuse-native baseline, measured in the
 * same run and reported as ratios (the project's rule: performance goals live
 * here, never in timed tests).
 *
 *   (a) open+read-until-EOF+close of available_instances vs a static attribute, ops/s
 *   (b) create+remove cycles/s: a fresh UUID to `create`, "1" to bus/mdev/devices/<uuid>/remove
 *   (c) `ls -l` of bus/mdev/devices with 10,000 devices, wall ms
 *   (a) and (b) with 10 devices and again with 50,000; the fill in between
 *   gives creates/s. Then the start figure (./start.ts: `mdevfs run -- true`
 *   against `umockdev-run -- true`), then test/bench/core.ts and
 *   test/bench/overlay.ts (the overlay's cost: a host file read in a run vs outside), if present.
 *
 * Both servers run in their own processes, the client (test/bench/client.c, or
 * client.py without gcc) in a third: a FUSE server must never touch its own
 * mount. Targets are interleaved within every repetition (order alternating);
 * medians are reported. BENCH_SCALE=small: 1,000 devices, short loops.
 * BENCH_CLIENT=python forces the python client.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, promises as fsp, unlinkSync, rmdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { activeClients, prepareClient, runClient, type Client, type Measured } from './client.js';
import { BENCH_MAX_INSTANCES } from './bench-driver.js';
import { ATTR, CREATE, DEVICES } from './layout.js';
import { REPO, startBaseline, startMdevfs, type Server } from './servers.js';
import { median, num, ratio, spreadPct, table } from './stats.js';
import { measureStart, startLine } from './start.js';

const SMALL = process.env.BENCH_SCALE === 'small';
const P = SMALL
  ? { scale: 'small', reps: 3, loopSec: 0.4, warm: 30, few: 10, many: 1_000, ls: 1_000, chunk: 250 }
  : { scale: 'full', reps: 5, loopSec: 1.5, warm: 200, few: 10, many: 50_000, ls: 10_000, chunk: 5_000 };

type Target = 'mdevfs' | 'baseline';
const TARGETS: readonly Target[] = ['mdevfs', 'baseline'];
/** Alternate which target goes first, so neither always runs on a cooler machine. */
const order = (i: number): readonly Target[] => (i % 2 ? [...TARGETS].reverse() : TARGETS);
type PerTarget<T> = Record<Target, T>;
const perTarget = <T>(f: () => T): PerTarget<T> => ({ mdevfs: f(), baseline: f() });

const say = (s = ''): void => {
  process.stdout.write(`${s}\n`);
};

// ---------------------------------------------------------------------------
// Cleanup: both servers are always stopped and unmounted (finally, signals, exit).

const servers: Server[] = [];
let tmp: string | undefined;
let client: Client | undefined;
const children = new Set<ChildProcess>();
let cleaning: Promise<void> | undefined;
let interrupted = false;

function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    for (const c of [...children, ...activeClients]) c.kill('SIGKILL');
    await Promise.all(servers.map(s => s.stop()));
    for (const f of client?.files ?? []) await fsp.unlink(f).catch(() => {});
    if (tmp) await fsp.rmdir(tmp).catch(() => {});
  })();
  return cleaning;
}

for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    interrupted = true;
    say(`\nbench: ${sig}: stopping both servers`);
    void cleanup().finally(() => process.exit(130));
  });
}
process.on('exit', () => {
  // Last resort if something skipped the async cleanup.
  for (const s of servers) s.stopSync();
  for (const f of client?.files ?? []) {
    try {
      unlinkSync(f);
    } catch {
      /* gone */
    }
  }
  if (tmp) {
    try {
      rmdirSync(tmp);
    } catch {
      /* gone or not empty */
    }
  }
});

// ---------------------------------------------------------------------------

let srv: PerTarget<Server>;
const at = (t: Target, rel: string): string => path.join(srv[t].dir, rel);
const rate = (m: Measured): number => m.ops / m.sec;

/** Devices currently present on each target. */
const count = perTarget(() => 0);
/** Every fill chunk: creates and seconds, with the count reached. */
const fills = perTarget((): Array<Measured & { to: number }> => []);

async function fillTo(n: number): Promise<void> {
  for (let i = 0; count.mdevfs < n || count.baseline < n; i++) {
    for (const t of order(i)) {
      const k = Math.min(P.chunk, n - count[t]);
      if (k <= 0) continue;
      const m = await runClient(client!, ['fill', at(t, CREATE), String(k)], 300_000);
      count[t] += k;
      fills[t].push({ ...m, to: count[t] });
    }
  }
  await verify(n);
}

/** The devices dirs list n entries; mdevfs's available_instances agrees. */
async function verify(n: number): Promise<void> {
  for (const t of TARGETS) {
    const names = await fsp.readdir(at(t, DEVICES));
    if (names.length !== n) throw new Error(`${t}: ${DEVICES} lists ${names.length} entries, expected ${n}`);
  }
  const avail = (await fsp.readFile(at('mdevfs', ATTR), 'utf8')).trim();
  if (avail !== String(BENCH_MAX_INSTANCES - n))
    throw new Error(`mdevfs: available_instances is ${avail}, expected ${BENCH_MAX_INSTANCES - n}`);
}

interface Figures {
  read: PerTarget<number[]>;
  cycle: PerTarget<number[]>;
}

async function measureReadCycle(devices: number): Promise<Figures> {
  const f: Figures = { read: perTarget(() => []), cycle: perTarget(() => []) };
  const timeout = (P.loopSec + 120) * 1000;
  for (let r = 0; r < P.reps; r++) {
    for (const t of order(r)) {
      f.read[t].push(rate(await runClient(client!, ['read', at(t, ATTR), String(P.loopSec), String(P.warm)], timeout)));
    }
    for (const t of order(r)) {
      f.cycle[t].push(
        rate(await runClient(client!, ['cycle', at(t, CREATE), at(t, DEVICES), String(P.loopSec), String(P.warm >> 1)], timeout)),
      );
    }
    say(
      `  ${num(devices)} devices, rep ${r + 1}: (a) read mdevfs ${num(f.read.mdevfs[r]!)}/s, baseline ${num(f.read.baseline[r]!)}/s;` +
        ` (b) create+remove mdevfs ${num(f.cycle.mdevfs[r]!)}/s, baseline ${num(f.cycle.baseline[r]!)}/s`,
    );
  }
  await verify(devices);
  return f;
}

/** Wall ms of `ls -l <dir>` with its output to /dev/null. */
function lsMs(dir: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const p = spawn('ls', ['-l', dir], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, LC_ALL: 'C' } });
    children.add(p);
    let err = '';
    p.stderr.on('data', d => {
      err += d;
    });
    const timer = setTimeout(() => p.kill('SIGKILL'), 300_000);
    p.on('error', reject);
    p.on('exit', (code, signal) => {
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      clearTimeout(timer);
      children.delete(p);
      if (code === 0) resolve(ms);
      else reject(new Error(`ls -l ${dir}: ${signal ?? `exit ${code}`} ${err.trim()}`));
    });
  });
}

async function measureLs(): Promise<PerTarget<number[]>> {
  const ms = perTarget((): number[] => []);
  for (const t of TARGETS) await lsMs(at(t, DEVICES)); // warm-up, untimed
  for (let r = 0; r < P.reps; r++) {
    for (const t of order(r)) ms[t].push(await lsMs(at(t, DEVICES)));
    say(`  ls -l of ${num(P.ls)} devices, rep ${r + 1}: mdevfs ${num(ms.mdevfs[r]!)} ms, baseline ${num(ms.baseline[r]!)} ms`);
  }
  return ms;
}

async function rssMB(pid: number | undefined): Promise<number> {
  const text = await fsp.readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const m = /^VmRSS:\s+(\d+) kB/m.exec(text);
  return m ? Number(m[1]) / 1024 : NaN;
}

/** A bench script of its own (core.ts: the in-process core; overlay.ts: the overlay's cost), if present. */
async function runScript(name: string): Promise<{ ran: boolean; code: number | null; out: string }> {
  const file = path.join(REPO, 'test/bench', name);
  if (!existsSync(file)) return { ran: false, code: 0, out: '' };
  return new Promise(resolve => {
    const p = spawn(process.execPath, ['--import', 'tsx', file], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(p);
    let out = '';
    p.stdout.on('data', d => {
      out += d;
    });
    p.stderr.on('data', d => {
      out += d;
    });
    const timer = setTimeout(() => {
      out += '\n[bench: killed after 180 s]';
      p.kill('SIGKILL');
    }, 180_000);
    p.on('close', code => {
      clearTimeout(timer);
      children.delete(p);
      resolve({ ran: true, code, out });
    });
    p.on('error', e => {
      clearTimeout(timer);
      children.delete(p);
      resolve({ ran: true, code: -1, out: String(e) });
    });
  });
}

// ---------------------------------------------------------------------------

async function main(): Promise<void> {
  const t0 = Date.now();
  if (!existsSync(path.join(REPO, 'dist/cli/main.js'))) throw new Error('dist/ is missing: run "npm run build" (npm run bench does)');
  tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'mdevfs-bench-'));
  client = await prepareClient(tmp);
  say(
    `mdevfs bench, scale ${P.scale}: ${num(P.few)} and ${num(P.many)} devices, ls -l at ${num(P.ls)}; ` +
      `${P.reps} interleaved repetitions, medians; loops of ${P.loopSec} s`,
  );
  say(
    `client: ${client.kind}, in its own process; node ${process.version}, ${os.cpus().length} CPUs, load ${os
      .loadavg()
      .map(l => l.toFixed(2))
      .join(' ')}`,
  );

  const started = await Promise.allSettled([startMdevfs(path.join(tmp, 'mdevfs')), startBaseline(path.join(tmp, 'baseline'))]);
  for (const s of started) if (s.status === 'fulfilled') servers.push(s.value);
  for (const s of started) if (s.status === 'rejected') throw s.reason;
  srv = { mdevfs: servers[0]!, baseline: servers[1]! };
  const opts = /-o (\S+)\)/.exec(srv.baseline.output())?.[1] ?? '?';
  say(`servers: mdevfs (bin/mdevfs mount --driver test/bench/bench-driver.ts) and baseline (test/bench/baseline-fs.ts), same paths;`);
  say(`  baseline -o ${opts} (the project's fuseOptionString(), own fsname/subtype)`);

  say(`\n[1] ${num(P.few)} devices`);
  await fillTo(P.few);
  const few = await measureReadCycle(P.few);

  say(`\n[2] filling to ${num(P.ls)} devices (chunks of ${num(P.chunk)}, alternating), ls -l`);
  await fillTo(P.ls);
  const ls = await measureLs();

  say(`\n[3] filling to ${num(P.many)} devices`);
  await fillTo(P.many);
  const rss = { mdevfs: await rssMB(srv.mdevfs.proc.pid), baseline: await rssMB(srv.baseline.proc.pid) };
  say(`  server RSS at ${num(P.many)} devices: mdevfs ${num(rss.mdevfs)} MB, baseline ${num(rss.baseline)} MB`);
  const many = await measureReadCycle(P.many);

  await cleanup();
  const stillMounted = (await fsp.readFile('/proc/mounts', 'utf8')).split('\n').filter(l => tmp && l.includes(tmp));
  say(`\nboth servers stopped and unmounted${stillMounted.length ? ` -- BUT STILL MOUNTED: ${stillMounted.join('; ')}` : ''}`);

  say(`\n[4] start: mdevfs run -- true against umockdev-run -- true, interleaved`);
  const start = await measureStart(P.reps * 2, say);

  const core = await runScript('core.ts');
  const overlay = await runScript('overlay.ts');

  // -------------------------------------------------------------------------
  // Report.
  const med = (xs: PerTarget<number[]>) => ({ m: median(xs.mdevfs), b: median(xs.baseline) });
  const fillAll = (t: Target) => {
    const c = fills[t].filter(f => f.to > P.few);
    return c.reduce((a, f) => a + f.ops, 0) / c.reduce((a, f) => a + f.sec, 0);
  };
  const chunkAt = (t: Target, which: 'first' | 'last') => {
    const c = fills[t].filter(f => f.to > P.few);
    return rate(which === 'first' ? c[0]! : c[c.length - 1]!);
  };
  const fewN = num(P.few),
    manyN = num(P.many);

  interface Row {
    label: string;
    unit: string;
    m: number;
    b: number;
    higherBetter: boolean;
    spread?: [number, number];
    /** Median of the per-repetition slowdowns (each pair measured back to back). */
    paired?: number;
    /** Each target's own figure at many devices over few (fill: last chunk over first). */
    scale?: number;
    baseScale?: number;
  }
  const rows: Row[] = [];
  const add = (label: string, unit: string, xs: PerTarget<number[]>, higherBetter: boolean, scale?: number, baseScale?: number) => {
    const { m, b } = med(xs);
    const paired = median(xs.mdevfs.map((x, i) => (higherBetter ? xs.baseline[i]! / x : x / xs.baseline[i]!)));
    rows.push({ label, unit, m, b, higherBetter, spread: [spreadPct(xs.mdevfs), spreadPct(xs.baseline)], paired, scale, baseScale });
  };
  add(`(a) attr read, ${fewN} devices`, 'ops/s', few.read, true);
  add(
    `(a) attr read, ${manyN} devices`,
    'ops/s',
    many.read,
    true,
    median(many.read.mdevfs) / median(few.read.mdevfs),
    median(many.read.baseline) / median(few.read.baseline),
  );
  add(`(b) create+remove, ${fewN} devices`, 'cycles/s', few.cycle, true);
  add(
    `(b) create+remove, ${manyN} devices`,
    'cycles/s',
    many.cycle,
    true,
    median(many.cycle.mdevfs) / median(few.cycle.mdevfs),
    median(many.cycle.baseline) / median(few.cycle.baseline),
  );
  const firstTo = num(fills.mdevfs.find(f => f.to > P.few)?.to ?? 0);
  rows.push({
    label: `fill creates, ${fewN} -> ${manyN} (once)`,
    unit: 'creates/s',
    m: fillAll('mdevfs'),
    b: fillAll('baseline'),
    higherBetter: true,
    scale: chunkAt('mdevfs', 'last') / chunkAt('mdevfs', 'first'),
    baseScale: chunkAt('baseline', 'last') / chunkAt('baseline', 'first'),
  });
  add(`(c) ls -l, ${num(P.ls)} devices`, 'ms', ls, false);
  const slow = (r: Row) => (r.higherBetter ? r.b / r.m : r.m / r.b);

  say('\n== Figures (ratio > 1: mdevfs is that many times slower than bare fuse-native, same run)');
  for (const r of rows) {
    const rt = r.higherBetter ? `ratio Y/X ${ratio(slow(r))}` : `ratio X/Y ${ratio(slow(r))} (a time: mdevfs/baseline)`;
    let line = `${r.label}: mdevfs X = ${num(r.m)} ${r.unit}, baseline Y = ${num(r.b)} ${r.unit}, ${rt}`;
    if (r.scale !== undefined) {
      line += r.label.startsWith('fill')
        ? `; mdevfs last chunk (-> ${manyN}) / first chunk (-> ${firstTo}) ${ratio(r.scale)} (baseline ${ratio(r.baseScale ?? NaN)})`
        : `; mdevfs @${manyN} / @${fewN} ${ratio(r.scale)} (baseline ${ratio(r.baseScale ?? NaN)})`;
    }
    say(line);
  }

  say(`\n== Table (medians of ${P.reps}; ± is half the min-max range)`);
  say(
    table(
      ['figure', 'unit', 'mdevfs', 'baseline', 'slowdown', 'paired', `mdevfs ${manyN}/${fewN}`, `baseline ${manyN}/${fewN}`],
      rows.map(r => [
        r.label,
        r.unit,
        `${num(r.m)}${r.spread ? ` ±${r.spread[0].toFixed(0)}%` : ''}`,
        `${num(r.b)}${r.spread ? ` ±${r.spread[1].toFixed(0)}%` : ''}`,
        `${ratio(slow(r))}x`,
        r.paired === undefined ? '' : `${ratio(r.paired)}x`,
        r.scale === undefined ? '' : ratio(r.scale),
        r.baseScale === undefined ? '' : ratio(r.baseScale),
      ]),
    ),
  );
  say('slowdown: baseline/mdevfs for rates, mdevfs/baseline for times (of the medians); paired: the median of the');
  say(`per-repetition slowdowns (each pair measured back to back). ${manyN}/${fewN}: each target's own figure with ${manyN}`);
  say(`devices over with ${fewN} (fill: last chunk over first); near 1.00 means nothing scans the devices, and the baseline's`);
  say(`shows how much the machine itself drifted. RSS at ${manyN}: mdevfs ${num(rss.mdevfs)} MB, baseline ${num(rss.baseline)} MB.`);
  say(`\n${startLine(start, median)} (medians of ${start.mdevfs.length})`);

  if (core.ran) {
    say(`\n== test/bench/core.ts (in-process core benchmark)${core.code === 0 ? '' : ` -- exited with ${core.code}`}`);
    say(core.out.trimEnd());
    if (core.code !== 0) process.exitCode = 1;
  } else {
    say('\n(test/bench/core.ts not present: no in-process core figures)');
  }
  if (overlay.ran) {
    say(`\n== test/bench/overlay.ts (mdevfs run over the host's /sys)${overlay.code === 0 ? '' : ` -- exited with ${overlay.code}`}`);
    say(overlay.out.trimEnd());
    if (overlay.code !== 0) process.exitCode = 1;
  }
  say(`\nbench took ${((Date.now() - t0) / 1000).toFixed(0)} s`);
}

main().then(
  () => cleanup(),
  async e => {
    if (interrupted) return; // the signal handler cleans up and exits
    process.stderr.write(`bench: ${e instanceof Error ? e.message : String(e)}\n`);
    for (const s of servers) if (s.output().trim()) process.stderr.write(`--- ${s.name} output:\n${s.output()}\n`);
    await cleanup();
    process.exitCode = 1;
  },
);
