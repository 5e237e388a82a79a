/**
 * The benchmark's report: each figure for mdevfs on the kernel engine (K), on
 * fuse-native (N) and for the bare fuse-native baseline (B), as medians and
 * as ratios from the same run.
 */
import { median, num, ratio, spreadPct, table } from './stats.js';

export type Target = 'kernel' | 'native' | 'baseline';
export type PerTarget<T> = Record<Target, T>;

export interface Row {
  label: string;
  unit: string;
  xs: PerTarget<number[]>;
  higherBetter: boolean;
  /** Each target's figure at many devices over at few. */
  scale?: PerTarget<number>;
}

/** How many times faster `a` is than `b` (rates: a/b; times: b/a). */
const faster = (r: Row, a: number, b: number): number => (r.higherBetter ? a / b : b / a);

export function reportTable(rows: Row[], manyN: string, fewN: string): string {
  return table(
    ['figure', 'unit', 'kernel K', 'fuse-native N', 'baseline B', 'K vs N', 'K vs B', 'N vs B', `K ${manyN}/${fewN}`, `N ${manyN}/${fewN}`],
    rows.map(r => {
      const m = { kernel: median(r.xs.kernel), native: median(r.xs.native), baseline: median(r.xs.baseline) };
      const cell = (t: Target) => `${num(m[t])} ±${spreadPct(r.xs[t]).toFixed(0)}%`;
      return [
        r.label,
        r.unit,
        cell('kernel'),
        cell('native'),
        cell('baseline'),
        `${ratio(faster(r, m.kernel, m.native))}x`,
        `${ratio(faster(r, m.kernel, m.baseline))}x`,
        `${ratio(faster(r, m.native, m.baseline))}x`,
        r.scale ? ratio(r.scale.kernel) : '',
        r.scale ? ratio(r.scale.native) : '',
      ];
    }),
  );
}

export const REPORT_LEGEND = [
  'K vs N, K vs B, N vs B: how many times faster the first is than the second (medians; > 1: faster).',
  'The baseline is a bare fuse-native server with zero timeouts serving static files at the same paths: the',
  'floor of the old path. many/few: each target at many devices over few (near 1.00: nothing scans the devices).',
];

/** (d): the deep immutable read against the host's real sysfs. */
export function deepLine(d: { kernel: number[]; native: number[]; sysfs: number[] }): string {
  const k = median(d.kernel),
    n = median(d.native),
    s = median(d.sysfs);
  return (
    `(d) immutable deep-path read: kernel ${num(k)}/s, fuse-native ${num(n)}/s, real sysfs ${num(s)}/s; ` +
    `kernel/sysfs ${ratio(k / s)}, fuse-native/sysfs ${ratio(n / s)}, kernel/fuse-native ${ratio(k / n)}`
  );
}
