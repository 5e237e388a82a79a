/**
 * The overlay's cost (docs/overlay.md), as ratios measured in the same run:
 *
 *   (d) a host file read (open+read-until-EOF+close) inside `mdevfs run` vs
 *       the same read outside, on the real sysfs: /sys/class/net/lo/mtu, served
 *       through the overlay, and /sys/devices/system/cpu/online, in the subtree
 *       a run binds straight from the host (src/run/host-binds.ts);
 *   (e) an emulated attribute read (a sample's available_instances) inside
 *       `mdevfs run` (over the host) vs inside `mdevfs run --bare`.
 *
 * The client (client.c, or client.py) runs as the run's command, so the
 * figures leave out the run's start. Repetitions interleave the targets, order
 * alternating; medians. Run alone with `node --import tsx test/bench/overlay.ts`
 * (after `npm run build`); `npm run bench` runs it after its own figures.
 */
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { prepareClient, runClient, type Client } from './client.js';
import { REPO } from './servers.js';
import { median, num, ratio, table } from './stats.js';

const SMALL = process.env.BENCH_SCALE === 'small';
const REPS = SMALL ? 3 : 5;
const SECS = SMALL ? '0.4' : '1.5';
const WARM = SMALL ? '30' : '200';
const HOST_FILE = '/sys/class/net/lo/mtu';
const BOUND_FILE = '/sys/devices/system/cpu/online';
const EMULATED = '/sys/class/mdev_bus/mdpy/mdev_supported_types/mdpy-vga/available_instances';
const BIN = path.join(REPO, 'bin/mdevfs');

/** The client as the command of `mdevfs run [args]`. */
const inRun = (c: Client, args: string[]): Client => ({ ...c, argv: [process.execPath, BIN, 'run', ...args, '--', ...c.argv] });

type Target = { name: string; client: Client; file: string };

async function main(): Promise<void> {
  const tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'mdevfs-bench-overlay-'));
  const client = await prepareClient(tmp);
  try {
    const targets: Target[] = [
      { name: 'host file, outside', client, file: HOST_FILE },
      { name: 'host file, in run', client: inRun(client, []), file: HOST_FILE },
      { name: 'bound host file, outside', client, file: BOUND_FILE },
      { name: 'bound host file, in run', client: inRun(client, []), file: BOUND_FILE },
      { name: 'emulated, in run', client: inRun(client, []), file: EMULATED },
      { name: 'emulated, in run --bare', client: inRun(client, ['--bare']), file: EMULATED },
    ];
    const rates = new Map<string, number[]>(targets.map(x => [x.name, []]));
    for (let i = 0; i < REPS; i++) {
      for (const x of i % 2 ? [...targets].reverse() : targets) {
        const m = await runClient(x.client, ['read', x.file, SECS, WARM], 120_000);
        rates.get(x.name)!.push(m.ops / m.sec);
      }
    }
    const med = (name: string): number => median(rates.get(name)!);
    const hostRatio = med('host file, outside') / med('host file, in run');
    const boundRatio = med('bound host file, outside') / med('bound host file, in run');
    const emuRatio = med('emulated, in run --bare') / med('emulated, in run');
    process.stdout.write(`client: ${client.kind}; ${REPS} repetitions of ${SECS} s, medians\n`);
    process.stdout.write(
      table(
        ['target', 'reads/s'],
        targets.map(x => [x.name, num(med(x.name))]),
      ) + '\n',
    );
    process.stdout.write(`(d) host file read: outside / inside mdevfs run = ${ratio(hostRatio)}x through the overlay (${HOST_FILE}),\n`);
    process.stdout.write(`    ${ratio(boundRatio)}x in the bound devices/system (${BOUND_FILE})\n`);
    process.stdout.write(
      `(e) emulated read: run --bare / run over the host = ${ratio(emuRatio)}x (what the overlay costs the emulated paths)\n`,
    );
  } finally {
    for (const f of client.files) await fsp.unlink(f).catch(() => {});
    await fsp.rmdir(tmp).catch(() => {});
  }
}

main().catch(e => {
  process.stderr.write(`bench overlay: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
