/**
 * Parallel readers and what bursts of them leave behind, per mdevfs engine:
 * (e) 8 readers at once, their summed rate; (f) the single-reader rate after
 * each of 3 bursts of 32 parallel readers, over the fresh rate (fuse-native's
 * libfuse threads keep per-thread state that slowed it after bursts; near
 * 1.00 means a burst leaves nothing behind). Each reader is its own client
 * process, reading the same attribute.
 */
import { runClient, type Client, type Measured } from './client.js';
import { median, num, ratio } from './stats.js';

const rate = (m: Measured): number => m.ops / m.sec;

export interface BurstFigures {
  /** Summed ops/s of 8 parallel readers. */
  parallel8: number;
  fresh: number;
  /** The single-reader rate after each burst. */
  after: number[];
}

async function parallel(client: Client, file: string, n: number, sec: number): Promise<number> {
  const runs = await Promise.all(Array.from({ length: n }, () => runClient(client, ['read', file, String(sec), '10'], (sec + 120) * 1000)));
  return runs.reduce((a, m) => a + rate(m), 0);
}

async function single(client: Client, file: string, sec: number, reps: number): Promise<number> {
  const xs: number[] = [];
  for (let i = 0; i < reps; i++) xs.push(rate(await runClient(client, ['read', file, String(sec), '30'], (sec + 120) * 1000)));
  return median(xs);
}

export async function measureBursts(client: Client, file: string, sec: number, reps: number): Promise<BurstFigures> {
  const fresh = await single(client, file, sec, reps);
  const parallel8 = await parallel(client, file, 8, sec);
  const after: number[] = [];
  for (let b = 0; b < 3; b++) {
    await parallel(client, file, 32, sec);
    after.push(await single(client, file, sec, reps));
  }
  return { parallel8, fresh, after };
}

export function burstLine(name: string, f: BurstFigures): string {
  return (
    `${name}: 8 parallel readers ${num(f.parallel8)}/s in all; single reader fresh ${num(f.fresh)}/s, after bursts of 32: ` +
    `${f.after.map(num).join(', ')}/s; last/fresh ${ratio(f.after[f.after.length - 1]! / f.fresh)}`
  );
}
