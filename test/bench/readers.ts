/**
 * The kernel engine's two ways of reading /dev/fuse (src/fuse/kernel/choose-reader.ts)
 * in one run, each a `bin/mdevfs mount --engine kernel` with MDEVFS_FUSE_READER
 * set: `loop` (the event loop, Node's internal pipe_wrap) and `worker` (a
 * worker thread's blocking read loop). Interleaved, order alternating, medians:
 *   (g) available_instances against a C libfuse2 server's root file (./c-libfuse.c)
 *   (d) the deep immutable read against the host's real sysfs
 *   (b) create+remove cycles, 10 devices
 *   (e, f) 8 parallel readers; the single-reader rate after bursts of 32 (./bursts.ts)
 *   RSS over 1,000,000 requests: server RSS sampled while the client reads
 *       available_instances (5 requests per open+read+close, counted once by
 *       instrumenting the session), first and last sample.
 * `npm run bench` runs it after its own figures; alone:
 * `npm run build && node --import tsx test/bench/readers.ts` (BENCH_SCALE=small: short).
 */
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { activeClients, prepareClient, runClient, type Client, type Measured } from './client.js';
import { burstLine, measureBursts, type BurstFigures } from './bursts.js';
import { ATTR, CREATE, DEEP, DEVICES, SYSFS_DEEP } from './layout.js';
import { fuseOptionString } from '../../src/fuse/mount.js';
import { startCLibfuse, startMdevfs, type Server } from './servers.js';
import { median, num, ratio } from './stats.js';

const SMALL = process.env.BENCH_SCALE === 'small';
const P = SMALL ? { reps: 3, loopSec: 0.4, warm: 30, requests: 100_000 } : { reps: 5, loopSec: 1.5, warm: 200, requests: 1_000_000 };
/** FUSE requests per open+read-until-EOF+close of available_instances (counted: see above). */
const REQUESTS_PER_READ = 5;
const READERS = ['loop', 'worker'] as const;
type Reader = (typeof READERS)[number];

const say = (s = ''): void => {
  process.stdout.write(`${s}\n`);
};
const rate = (m: Measured): number => m.ops / m.sec;
const timeout = (P.loopSec + 120) * 1000;

const servers: Server[] = [];
let tmp: string | undefined;
let client: Client | undefined;

async function cleanup(): Promise<void> {
  for (const c of activeClients) c.kill('SIGKILL');
  await Promise.all(servers.map(s => s.stop()));
  for (const f of client?.files ?? []) await fsp.unlink(f).catch(() => {});
  if (tmp) await fsp.rmdir(tmp).catch(() => {});
}
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => void cleanup().finally(() => process.exit(130)));
process.on('exit', () => {
  for (const s of servers) s.stopSync();
});

/** Interleaved reads of `paths` (order rotating each repetition): ops/s per key. */
async function interleaved<K extends string>(
  what: string,
  paths: Record<K, string>,
  args: (p: string) => string[],
): Promise<Record<K, number[]>> {
  const keys = Object.keys(paths) as K[];
  const out = Object.fromEntries(keys.map(k => [k, [] as number[]])) as Record<K, number[]>;
  for (let r = 0; r < P.reps; r++) {
    for (let k = 0; k < keys.length; k++) {
      const key = keys[(k + r) % keys.length]!;
      out[key].push(rate(await runClient(client!, args(paths[key]), timeout)));
    }
    say(`  ${what}, rep ${r + 1}: ${keys.map(k => `${k} ${num(out[k][r]!)}/s`).join(', ')}`);
  }
  return out;
}

async function rssMB(pid: number | undefined): Promise<number> {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(await fsp.readFile(`/proc/${pid}/status`, 'utf8').catch(() => ''));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** Server RSS before and after each second of one client reading available_instances, until `P.requests`. */
async function rssOver(s: Server): Promise<number[]> {
  const samples = [await rssMB(s.proc.pid)];
  const file = path.join(s.dir, ATTR);
  for (let requests = 0; requests < P.requests;) {
    requests += (await runClient(client!, ['read', file, '1', '0'], timeout)).ops * REQUESTS_PER_READ;
    samples.push(await rssMB(s.proc.pid));
  }
  return samples;
}

async function main(): Promise<void> {
  tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'mdevfs-bench-readers-'));
  client = await prepareClient(tmp);
  say(`kernel engine readers (MDEVFS_FUSE_READER=loop|worker), ${P.reps} interleaved repetitions, medians; node ${process.version}`);
  const srv = {} as Record<Reader, Server>;
  for (const r of READERS) servers.push((srv[r] = await startMdevfs(path.join(tmp, r), 'kernel', r)));
  // MDEVFS_FUSE_READER=loop fails the mount rather than fall back: each server runs the reader it is named after.
  for (const r of READERS) await runClient(client, ['fill', path.join(srv[r].dir, CREATE), '10'], 60_000);
  const at = (rel: string) => Object.fromEntries(READERS.map(r => [r, path.join(srv[r].dir, rel)])) as Record<Reader, string>;
  const read = (p: string) => ['read', p, String(P.loopSec), String(P.warm)];

  const clibOpts = fuseOptionString({ fsname: 'clibfuse' }).replace('subtype=mdevfs', 'subtype=clibfuse');
  const clib = await startCLibfuse(tmp, path.join(tmp, 'clib'), clibOpts);
  let g: Record<Reader | 'clib', number[]> | string;
  if (typeof clib === 'string') g = clib;
  else {
    servers.push(clib);
    g = await interleaved('(g) available_instances vs C root file', { ...at(ATTR), clib: path.join(clib.dir, 'attr') }, read);
    await clib.stop();
  }
  const d = await interleaved('(d) deep immutable read', { ...at(DEEP), sysfs: SYSFS_DEEP }, read);
  const b = await interleaved('(b) create+remove', at(''), p => [
    'cycle',
    path.join(p, CREATE),
    path.join(p, DEVICES),
    String(P.loopSec),
    '20',
  ]);
  const bursts = {} as Record<Reader, BurstFigures>;
  for (const r of READERS) {
    say(`  (e, f) ${r}: parallel readers and bursts of 32`);
    bursts[r] = await measureBursts(client, path.join(srv[r].dir, ATTR), P.loopSec, P.reps);
  }
  const rss = {} as Record<Reader, number[]>;
  for (const r of READERS) {
    say(`  RSS over ${num(P.requests)} requests: ${r}`);
    rss[r] = await rssOver(srv[r]);
  }
  await cleanup();

  const m = (xs: number[]) => median(xs);
  say(`\n== kernel engine: event-loop reader (loop) vs worker reader (worker), medians of ${P.reps}`);
  say(
    typeof g === 'string'
      ? `(g) C libfuse2 baseline skipped: ${g}`
      : `(g) available_instances: loop ${num(m(g.loop))}/s, worker ${num(m(g.worker))}/s, C libfuse2 root file ${num(m(g.clib))}/s; ` +
          `loop/C ${ratio(m(g.loop) / m(g.clib))}, worker/C ${ratio(m(g.worker) / m(g.clib))}, loop/worker ${ratio(m(g.loop) / m(g.worker))}`,
  );
  say(
    `(d) deep immutable read: loop ${num(m(d.loop))}/s, worker ${num(m(d.worker))}/s, real sysfs ${num(m(d.sysfs))}/s; ` +
      `loop/sysfs ${ratio(m(d.loop) / m(d.sysfs))}, worker/sysfs ${ratio(m(d.worker) / m(d.sysfs))}`,
  );
  say(`(b) create+remove: loop ${num(m(b.loop))}/s, worker ${num(m(b.worker))}/s; loop/worker ${ratio(m(b.loop) / m(b.worker))}`);
  for (const r of READERS) say(`(e, f) ${burstLine(r, bursts[r])}`);
  for (const r of READERS) {
    const xs = rss[r];
    say(
      `RSS over ${num(P.requests)} requests, ${r}: first ${xs[0]!.toFixed(1)} MB, last ${xs[xs.length - 1]!.toFixed(1)} MB ` +
        `(max ${Math.max(...xs).toFixed(1)}; ${xs.length} samples); last/first ${ratio(xs[xs.length - 1]! / xs[0]!)}`,
    );
  }
}

main().then(
  () => cleanup(),
  async e => {
    process.stderr.write(`bench readers: ${e instanceof Error ? e.message : String(e)}\n`);
    for (const s of servers) if (s.output().trim()) process.stderr.write(`--- ${s.name} output:\n${s.output()}\n`);
    await cleanup();
    process.exitCode = 1;
  },
);
