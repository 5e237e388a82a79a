/** Medians, spreads and the number formatting of the benchmark's report. */

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Half the min–max range as a percentage of the median. */
export function spreadPct(xs: readonly number[]): number {
  if (xs.length < 2) return 0;
  return ((Math.max(...xs) - Math.min(...xs)) / 2 / median(xs)) * 100;
}

/** 12,345 for large values and integers, 3 significant digits below 100. */
export function num(x: number): string {
  if (!Number.isFinite(x)) return 'n/a';
  if (Math.abs(x) >= 100 || Number.isInteger(x)) return Math.round(x).toLocaleString('en-US');
  return x.toPrecision(3);
}

export function ratio(x: number): string {
  return Number.isFinite(x) ? `${x.toFixed(2)}` : 'n/a';
}

/** A plain-text table; the first column is left-aligned, the rest right-aligned. */
export function table(head: string[], rows: string[][]): string {
  const all = [head, ...rows];
  const w = head.map((_, i) => Math.max(...all.map(r => (r[i] ?? '').length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => (i === 0 ? c.padEnd(w[i]!) : c.padStart(w[i]!)))
      .join('  ')
      .trimEnd();
  return [line(head), w.map(n => '-'.repeat(n)).join('  '), ...rows.map(line)].join('\n');
}
