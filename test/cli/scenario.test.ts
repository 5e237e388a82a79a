// `--scenario <file>`: a fixed story of control requests played after the
// mount (docs/control.md), checked before anything is mounted.
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { FIXTURES, makeMountDir, mdevfsMount, spawnChild, startDaemon, type Teardownable } from '../helpers/daemon.js';
import { one, readOnce, writeOnce } from '../helpers/sys.js';
import { waitFor, scratchDir } from '../helpers/util.js';
import { P, TA } from '../fixtures/test-plugin.js';

const PLUGIN = `${FIXTURES}/test-plugin.ts`;

const scratch = (t: Teardownable): Promise<string> => scratchDir(t, 'mdevfs-scenario-');

t.test('the steps play in time order; a refused step is logged and the story goes on', async t => {
  const tmp = await scratch(t);
  const file = path.join(tmp, 'story.json');
  const ue = path.join(tmp, 'uevents.jsonl');
  await fsp.writeFile(
    file,
    JSON.stringify({
      steps: [
        { at: 600, op: 'plug', parent: 'mtest' },
        { at: 600, op: 'set-available', type: 'mtest-a', available: 1 },
        { at: 0, op: 'fail', call: 'create', type: 'mtest-a', errno: 'EDQUOT' },
        { at: 300, op: 'unplug', parent: 'mtest' },
        { at: 700, op: 'unplug', parent: 'nosuch' },
      ],
    }),
  );
  const d = await startDaemon(t, {
    command: mdevfsMount('--driver', PLUGIN, '--scenario', file, '--uevents', ue),
    env: { ...process.env, TMPDIR: tmp },
  });
  t.ok(
    await waitFor(async () => /scenario steps\[4\] \(unplug parent=nosuch\): ENODEV/.test(d.stderr), 20_000),
    'the last step was refused',
  );
  const evs = (await fsp.readFile(ue, 'utf8'))
    .trim()
    .split('\n')
    .map(l => JSON.parse(l) as Record<string, string>)
    .filter(e => e.MDEV_STATE && e.DEVPATH === `/${P}`)
    .map(e => e.MDEV_STATE);
  t.same(evs, ['registered', 'unregistered', 'registered'], 'unplugged, then plugged back');
  t.same(await one(['listdir', d.p('class/mdev_bus')]), ['0000:00:02.0', 'mtest']);
  t.equal(await readOnce(d.p(TA, 'available_instances')), '1\n', 'set-available after the plug, in file order');
  t.equal(await writeOnce(d.p(TA, 'create'), '83b8f4f2-509f-382f-3c1e-e6bfe0fa5001'), 'EDQUOT', 'the fault of step 0');
});

t.test('a bad scenario file: every problem, exit 1, nothing mounted', async t => {
  const tmp = await scratch(t);
  const file = path.join(tmp, 'bad.json');
  await fsp.writeFile(file, JSON.stringify({ steps: [{ at: -1, op: 'unplug' }, { at: 5, op: 'events' }, 3] }));
  const mnt = await makeMountDir(t);
  const c = spawnChild(t, mdevfsMount('--driver', PLUGIN, '--scenario', file)(mnt), { ...process.env, TMPDIR: tmp });
  t.equal((await c.exited).code, 1);
  t.equal(
    c.err(),
    [
      `mdevfs: ${file}: steps[0].at: must be a non-negative integer (ms)`,
      `mdevfs: ${file}: steps[1].op: must be one of unplug, plug, fail, delay, clear-faults, set-available`,
      `mdevfs: ${file}: steps[2]: must be an object`,
      '',
    ].join('\n'),
  );
  t.same(await one(['listdir', mnt]), []);
  await fsp.writeFile(file, '{"steps": [');
  const c2 = spawnChild(t, mdevfsMount('--driver', PLUGIN, '--scenario', file)(mnt), { ...process.env, TMPDIR: tmp });
  t.equal((await c2.exited).code, 1);
  t.match(c2.err(), /^mdevfs: --scenario .*bad\.json: .*JSON/);
});
