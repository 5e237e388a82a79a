import t from 'tap';
import { Mutex } from '../../src/core/list-lock.js';
import { tick } from './helpers.js';

t.test('mutual exclusion, FIFO order', async t => {
  const m = new Mutex();
  const log: string[] = [];
  let inside = 0;
  let maxInside = 0;
  await Promise.all(
    [1, 2, 3, 4].map(i =>
      m.run(async () => {
        inside++;
        maxInside = Math.max(maxInside, inside);
        log.push(`in${i}`);
        await tick(5 - i);
        log.push(`out${i}`);
        inside--;
      }),
    ),
  );
  t.equal(maxInside, 1);
  t.same(log, ['in1', 'out1', 'in2', 'out2', 'in3', 'out3', 'in4', 'out4']);
  t.notOk(m.locked);
});

t.test('a throwing section releases the lock; double release is harmless', async t => {
  const m = new Mutex();
  await t.rejects(
    m.run(() => {
      throw new Error('x');
    }),
  );
  t.notOk(m.locked);
  const r = await m.acquire();
  r();
  r();
  t.notOk(m.locked);
  const r2 = await m.acquire();
  t.ok(m.locked);
  r2();
});
