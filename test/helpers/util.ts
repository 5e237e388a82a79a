// Small helpers shared by the tests and the benchmark. No side effects on
// import (unlike daemon.ts, which installs exit and signal handlers), so the
// benchmark and in-memory tests can use them too.
import { existsSync, promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository's root directory. */
export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** The system python3 (a pyenv-style shim on PATH costs ~0.1–0.15 s per start). */
export const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

/** A deterministic, valid UUID per number: 1 → 00000000-0000-4000-8000-000000000001. */
export const uuid = (n: number): string => `00000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;

/** Resolve after `ms` milliseconds. */
export const sleep = (ms: number): Promise<void> => new Promise(r => setTimeout(r, ms));

/**
 * Poll `probe` every `stepMs` until it returns a truthy value (returned) or
 * `ms` have passed (undefined; the probe always runs once more at the end).
 */
export async function waitFor<T>(probe: () => Promise<T | undefined | false>, ms: number, stepMs = 50): Promise<T | undefined> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > end) return undefined;
    await sleep(stepMs);
  }
}

/** Is `dir` a mount point in this process's mount namespace? */
export async function isMounted(dir: string): Promise<boolean> {
  const text = await fsp.readFile('/proc/self/mountinfo', 'utf8');
  return text.split('\n').some(l => l.split(' ')[4] === dir);
}

/** A fresh private directory under the temp dir, removed (with what is in it) at the test's teardown. */
export async function scratchDir(t: { teardown(fn: () => unknown): void }, prefix = 'mdevfs-scratch-'): Promise<string> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), prefix));
  t.teardown(() => fsp.rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Whether `p` exists now (for waitFor on a file a child process creates). */
export const exists = (p: string): Promise<boolean> =>
  fsp.access(p).then(
    () => true,
    () => false,
  );
