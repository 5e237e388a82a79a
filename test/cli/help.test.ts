// Every command explains itself: usage, options, and examples to copy.
import t from 'tap';
import { BIN, run } from '../helpers/daemon.js';

for (const cmd of [[], ['mount'], ['umount'], ['run'], ['capture'], ['ctl']]) {
  t.test(`mdevfs ${[...cmd, '--help'].join(' ')}`, async t => {
    const r = await run(process.execPath, [BIN, ...cmd, '--help']);
    t.equal(r.code, 0, r.stderr);
    t.match(r.stdout, /^Usage: mdevfs/);
    t.match(r.stdout, /\nExamples?:\n {2}mdevfs /, 'with examples');
  });
}

t.test('the top-level help lists every command', async t => {
  const r = await run(process.execPath, [BIN, '--help']);
  for (const c of ['mount', 'umount', 'run', 'capture', 'ctl']) t.match(r.stdout, new RegExp(`\\n {2}${c}\\b`), c);
});
