// Exactness with the kernel's caches on (docs/fuse.md#caching): 1,000 rounds of
// create and remove on the demo tree, each observed from another process by
// stat, readdir and read (cache_observer.py): nothing stale. And the same
// observer with invalidation switched off (MDEVFS_TEST_NO_INVALIDATE, the
// engine's test-only switch) does see stale entries, so it measures what it claims.
import t from 'tap';
import path from 'node:path';
import { mdevfsMount, run, startDaemon } from '../helpers/daemon.js';
import { PYTHON, REPO } from '../helpers/util.js';

const OBSERVER = path.join(REPO, 'test/fuse/cache_observer.py');

interface Result {
  observed: number;
  stale: number;
  examples: unknown[];
}

async function observe(dir: string, rounds: number): Promise<Result> {
  const r = await run(PYTHON, [OBSERVER, dir, String(rounds)], { timeoutMs: 180_000 });
  if (r.code !== 0) throw new Error(`observer failed (${r.code}): ${r.stderr}`);
  return JSON.parse(r.stdout) as Result;
}

t.test('1,000 rounds of create/remove, observed from another process: 0 stale', async t => {
  const d = await startDaemon(t, { command: mdevfsMount() });
  const r = await observe(d.dir, 1000);
  t.equal(r.observed, 10_000, 'five observations after each create and each remove');
  t.equal(r.stale, 0, `stale observations: ${JSON.stringify(r.examples)}`);
});

t.test('with invalidation switched off, the same observer sees stale entries', async t => {
  const d = await startDaemon(t, {
    command: mdevfsMount('--engine', 'kernel'),
    env: { ...process.env, MDEVFS_TEST_NO_INVALIDATE: '1' },
  });
  const r = await observe(d.dir, 100);
  t.ok(r.stale > 0, `${r.stale} of ${r.observed} stale`);
});
