// The batches of a run's mount steps (src/run/script.ts), with harmless
// commands in a scratch directory instead of mount(8): a fatal step stops the
// batch with its program's message, a lenient group's failure is a warning
// that skips the rest of that group only, and arguments reach the program as
// given (quotes, spaces, a leading dash).
import t from 'tap';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { runScript } from '../../src/run/script.js';
import { scratchDir } from '../helpers/util.js';

t.test('a fatal step stops the batch with "cannot <what>: <message>"', async t => {
  const dir = await scratchDir(t, 'mdevfs-script-');
  const err = await runScript([
    { argv: ['touch', path.join(dir, 'a')], what: 'make a' },
    { argv: ['mkdir', path.join(dir, 'no/such/parent')], what: 'make the parent' },
    { argv: ['touch', path.join(dir, 'b')], what: 'make b' },
  ]).then(
    () => undefined,
    (e: Error) => e.message,
  );
  t.match(err, /^cannot make the parent: mkdir: cannot create directory .*No such file or directory$/);
  t.same((await fsp.readdir(dir)).sort(), ['a'], 'the steps before it ran, none after it');
});

t.test("a lenient group's failure: a warning, the rest of that group skipped, the batch goes on", async t => {
  const dir = await scratchDir(t, 'mdevfs-script-');
  const warnings = await runScript(
    [
      { argv: ['touch', path.join(dir, 'g1')], what: 'make g1', group: 'g' },
      { sh: 'echo "it broke" >&2; exit 3', what: 'break', group: 'g' },
      { argv: ['touch', path.join(dir, 'g2')], what: 'make g2', group: 'g' },
      { argv: ['touch', path.join(dir, 'after')], what: 'make after' },
    ],
    [{ name: 'g', undo: [path.join(dir, 'not-a-mount')] }],
  );
  t.same([...warnings], [['g', 'cannot break: it broke']]);
  t.same((await fsp.readdir(dir)).sort(), ['after', 'g1']);
});

t.test('arguments as given', async t => {
  const dir = await scratchDir(t, 'mdevfs-script-');
  const odd = ["it's", 'a b', '-n', '$HOME', '\\x', '"q"'];
  await runScript([
    { sh: `printf '%s\\n' "$@" > /dev/null`, what: 'nothing' },
    ...odd.map(n => ({ argv: ['touch', '--', path.join(dir, n)], what: n })),
  ]);
  t.same((await fsp.readdir(dir)).sort(), [...odd].sort());
});
