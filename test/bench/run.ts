/**
 * `npm run bench`: mdevfs on each FUSE engine (kernel: its own /dev/fuse
 * protocol engine; fuse-native: libfuse 2) against a bare fuse-native
 * baseline, measured in the same run and reported as ratios (the project's
 * rule: performance goals live here, never in timed tests).
 *
 *   (d) an immutable attribute read through a class link (deep path), both
 *       engines against the host's real sysfs
 *   (e, f) 8 parallel readers; the single-reader rate after bursts of 32 (./bursts.ts)
 *   (g) available_instances on the kernel engine against a C libfuse2 server's
 *       root file (./c-libfuse.c; skipped without gcc and libfuse-dev)

 *   (a) open+read-until-EOF+close of available_instances vs a static attribute, ops/s
 *   (b) create+remove cycles/s: a fresh UUID to `create`, "1" to bus/mdev/devices/<uuid>/remove
 *   (c) `ls -l` of bus/mdev/devices with 10,000 devices, wall ms
 *   (a) and (b) with 10 devices and again with 50,000; the fill in between
 *   gives creates/s. Then the start figure (./start.ts: `mdevfs run -- true`
 *   against `umockdev-run -- true`), then test/bench/core.ts and
 *   test/bench/overlay.ts (the overlay's cost: a host file read in a run vs outside) and
 *   test/bench/readers.ts (the kernel engine's event-loop and worker readers), if present.
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
import { burstLine, measureBursts } from './bursts.js';
import { ATTR, CREATE, DEEP, DEVICES, SYSFS_DEEP } from './layout.js';
import { fuseOptionString } from '../../src/fuse/mount.js';
import { REPO, startBaseline, startCLibfuse, startMdevfs, type Server } from './servers.js';
import { deepLine, REPORT_LEGEND, reportTable, type PerTarget, type Row, type Target } from './report.js';
import { median, num } from './stats.js';
import { measureStart, startLine } from './start.js';

const SMALL = process.env.BENCH_SCALE === 'small';
const P = SMALL
  ? { scale: 'small', reps: 3, loopSec: 0.4, warm: 30, few: 10, many: 1_000, ls: 1_000, chunk: 250 }
  : { scale: 'full', reps: 5, loopSec: 1.5, warm: 200, few: 10, many: 50_000, ls: 10_000, chunk: 5_000 };

/** mdevfs on the kernel engine, mdevfs on fuse-native, the bare fuse-native baseline. */
const TARGETS: readonly Target[] = ['kernel', 'native', 'baseline'];
/** Rotate which target goes first, so none always runs on a cooler machine. */
const order = (i: number): readonly Target[] => TARGETS.map((_, k) => TARGETS[(k + i) % TARGETS.length]!);
const perTarget = <T>(f: () => T): PerTarget<T> => ({ kernel: f(), native: f(), baseline: f() });
const mapTargets = <T>(f: (t: Target) => T): PerTarget<T> => ({ kernel: f('kernel'), native: f('native'), baseline: f('baseline') });

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
  for (let i = 0; TARGETS.some(t => count[t] < n); i++) {
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
  for (const t of ['kernel', 'native'] as const) {
    const avail = (await fsp.readFile(at(t, ATTR), 'utf8')).trim();
    if (avail !== String(BENCH_MAX_INSTANCES - n))
      throw new Error(`mdevfs ${t}: available_instances is ${avail}, expected ${BENCH_MAX_INSTANCES - n}`);
  }
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
    const each = (xs: PerTarget<number[]>) => TARGETS.map(t => `${t} ${num(xs[t][r]!)}/s`).join(', ');
    say(`  ${num(devices)} devices, rep ${r + 1}: (a) read ${each(f.read)}; (b) create+remove ${each(f.cycle)}`);
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
    say(`  ls -l of ${num(P.ls)} devices, rep ${r + 1}: ${TARGETS.map(t => `${t} ${num(ms[t][r]!)} ms`).join(', ')}`);
  }
  return ms;
}

/** (g) The dynamic attribute on the kernel engine against the C libfuse2 server's root file, interleaved. */
async function measureClib(clib: Server): Promise<{ kernel: number[]; clib: number[] }> {
  const out = { kernel: [] as number[], clib: [] as number[] };
  const paths = { kernel: at('kernel', ATTR), clib: path.join(clib.dir, 'attr') };
  for (let r = 0; r < P.reps; r++) {
    for (const key of r % 2 ? (['clib', 'kernel'] as const) : (['kernel', 'clib'] as const)) {
      out[key].push(rate(await runClient(client!, ['read', paths[key], String(P.loopSec), String(P.warm)], (P.loopSec + 120) * 1000)));
    }
    say(`  available_instances vs C root file, rep ${r + 1}: kernel ${num(out.kernel[r]!)}/s, C libfuse2 ${num(out.clib[r]!)}/s`);
  }
  return out;
}

/** (d) The deep immutable read: both engines and the host's real sysfs (the baseline has no such path). */
async function measureDeep(): Promise<{ kernel: number[]; native: number[]; sysfs: number[] }> {
  const out = { kernel: [] as number[], native: [] as number[], sysfs: [] as number[] };
  const paths = { kernel: at('kernel', DEEP), native: at('native', DEEP), sysfs: SYSFS_DEEP };
  const keys = Object.keys(out) as Array<keyof typeof out>;
  for (let r = 0; r < P.reps; r++) {
    for (let k = 0; k < keys.length; k++) {
      const key = keys[(k + r) % keys.length]!;
      out[key].push(rate(await runClient(client!, ['read', paths[key], String(P.loopSec), String(P.warm)], (P.loopSec + 120) * 1000)));
    }
    say(`  deep read, rep ${r + 1}: ${keys.map(k => `${k} ${num(out[k][r]!)}/s`).join(', ')}`);
  }
  return out;
}

async function rssMB(pid: number | undefined): Promise<number> {
  const text = await fsp.readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const m = /^VmRSS:\s+(\d+) kB/m.exec(text);
  return m ? Number(m[1]) / 1024 : NaN;
}

/** A bench script of its own (core.ts: the in-process core; overlay.ts: the overlay's cost), if present. */
async function runScript(name: string, limitSec = 180): Promise<{ ran: boolean; code: number | null; out: string }> {
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
      out += `\n[bench: killed after ${limitSec} s]`;
      p.kill('SIGKILL');
    }, limitSec * 1000);
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

  const started = await Promise.allSettled([
    startMdevfs(path.join(tmp, 'kernel'), 'kernel'),
    startMdevfs(path.join(tmp, 'native'), 'fuse-native'),
    startBaseline(path.join(tmp, 'baseline')),
  ]);
  for (const s of started) if (s.status === 'fulfilled') servers.push(s.value);
  for (const s of started) if (s.status === 'rejected') throw s.reason;
  srv = { kernel: servers[0]!, native: servers[1]!, baseline: servers[2]! };
  const opts = /-o (\S+)\)/.exec(srv.baseline.output())?.[1] ?? '?';
  say(
    `servers: mdevfs kernel and mdevfs native (bin/mdevfs mount --engine kernel|fuse-native --driver test/bench/bench-driver.ts)` +
      ` and baseline (test/bench/baseline-fs.ts), same paths;`,
  );
  say(`  baseline -o ${opts} (the project's fuseOptionString(), own fsname/subtype)`);

  say(`\n[1] ${num(P.few)} devices`);
  await fillTo(P.few);
  const few = await measureReadCycle(P.few);
  say(`  (d) ${DEEP} on both engines, ${SYSFS_DEEP} on the host's sysfs`);
  const deep = await measureDeep();
  const clibOpts = fuseOptionString({ fsname: 'clibfuse' }).replace('subtype=mdevfs', 'subtype=clibfuse');
  const clib = await startCLibfuse(tmp, path.join(tmp, 'clib'), clibOpts);
  let clibFig: { kernel: number[]; clib: number[] } | string = typeof clib === 'string' ? clib : '';
  if (typeof clib !== 'string') {
    servers.push(clib);
    say(`  (g) ${ATTR} on the kernel engine against test/bench/c-libfuse.c's root file (-o ${clibOpts})`);
    clibFig = await measureClib(clib);
    await clib.stop();
  }
  say(`  (e, f) parallel readers and bursts of 32, on ${ATTR}`);
  const bursts = {
    kernel: await measureBursts(client, at('kernel', ATTR), P.loopSec, P.reps),
    native: await measureBursts(client, at('native', ATTR), P.loopSec, P.reps),
  };

  say(`\n[2] filling to ${num(P.ls)} devices (chunks of ${num(P.chunk)}, alternating), ls -l`);
  await fillTo(P.ls);
  const ls = await measureLs();

  say(`\n[3] filling to ${num(P.many)} devices`);
  await fillTo(P.many);
  const rss = perTarget(() => NaN);
  for (const t of TARGETS) rss[t] = await rssMB(srv[t].proc.pid);
  const rssLine = TARGETS.map(t => `${t} ${num(rss[t])} MB`).join(', ');
  say(`  server RSS at ${num(P.many)} devices: ${rssLine}`);
  const many = await measureReadCycle(P.many);

  await cleanup();
  const stillMounted = (await fsp.readFile('/proc/mounts', 'utf8')).split('\n').filter(l => tmp && l.includes(tmp));
  say(`\nall servers stopped and unmounted${stillMounted.length ? ` -- BUT STILL MOUNTED: ${stillMounted.join('; ')}` : ''}`);

  say(`\n[4] start: mdevfs run -- true against umockdev-run -- true, interleaved`);
  const start = await measureStart(P.reps * 2, say);

  const core = await runScript('core.ts');
  const overlay = await runScript('overlay.ts');
  const readers = await runScript('readers.ts', 900);

  // -------------------------------------------------------------------------
  // Report.
  const manyN = num(P.many),
    fewN = num(P.few);
  const scaleOf = (many: PerTarget<number[]>, few: PerTarget<number[]>) => mapTargets(t => median(many[t]) / median(few[t]));
  const fillRate = (t: Target) => {
    const c = fills[t].filter(f => f.to > P.few);
    return [c.reduce((a, f) => a + f.ops, 0) / c.reduce((a, f) => a + f.sec, 0)];
  };
  const rows: Row[] = [
    { label: `(a) attr read, ${fewN} devices`, unit: 'ops/s', xs: few.read, higherBetter: true },
    { label: `(a) attr read, ${manyN} devices`, unit: 'ops/s', xs: many.read, higherBetter: true, scale: scaleOf(many.read, few.read) },
    { label: `(b) create+remove, ${fewN} devices`, unit: 'cycles/s', xs: few.cycle, higherBetter: true },
    {
      label: `(b) create+remove, ${manyN} devices`,
      unit: 'cycles/s',
      xs: many.cycle,
      higherBetter: true,
      scale: scaleOf(many.cycle, few.cycle),
    },
    { label: `fill creates, ${fewN} -> ${manyN} (once)`, unit: 'creates/s', xs: mapTargets(fillRate), higherBetter: true },
    { label: `(c) ls -l, ${num(P.ls)} devices`, unit: 'ms', xs: ls, higherBetter: false },
  ];
  say(`\n== Table (medians of ${P.reps}; ± is half the min-max range)`);
  say(reportTable(rows, manyN, fewN));
  for (const l of REPORT_LEGEND) say(l);
  say(deepLine(deep));
  say(
    typeof clibFig === 'string'
      ? `(g) C libfuse2 baseline skipped: ${clibFig}`
      : `(g) dynamic read: kernel available_instances ${num(median(clibFig.kernel))}/s, C libfuse2 root file ${num(median(clibFig.clib))}/s, ` +
          `kernel/C ${(median(clibFig.kernel) / median(clibFig.clib)).toFixed(2)}`,
  );
  say(`(e, f) ${burstLine('kernel', bursts.kernel)}`);
  say(`(e, f) ${burstLine('fuse-native', bursts.native)}`);
  say(`RSS at ${manyN} devices: ${rssLine}.`);
  say(`\n${startLine(start, median)} (medians of ${start.mdevfs.length})`);

  const show = (name: string, what: string, r: { ran: boolean; code: number | null; out: string }): void => {
    if (!r.ran) return;
    say(`\n== test/bench/${name} (${what})${r.code === 0 ? '' : ` -- exited with ${r.code}`}`);
    say(r.out.trimEnd());
    if (r.code !== 0) process.exitCode = 1;
  };
  show('core.ts', 'in-process core benchmark', core);
  if (!core.ran) say('\n(test/bench/core.ts not present: no in-process core figures)');
  show('overlay.ts', "mdevfs run over the host's /sys", overlay);
  show('readers.ts', "the kernel engine's two readers", readers);
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
