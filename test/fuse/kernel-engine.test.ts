// What the kernel engine gets right where fuse-native cannot (docs/fuse.md#limits):
// fstat on a descriptor whose file has gone (sysfs answers it), and utimens with
// distinct access and modification times. Both on the mount tests' plugin.
import t from 'tap';
import path from 'node:path';
import { FIXTURES, mdevfsMount, sh, startDaemon } from '../helpers/daemon.js';
import { sys, writeOnce } from '../helpers/sys.js';
import { uuid } from '../helpers/util.js';
import { P, TA } from '../fixtures/test-plugin.js';

const PLUGIN = path.join(FIXTURES, 'test-plugin.ts');
// MDEVFS_TEST_ENGINE=fuse-native shows what these guard against (both fail there).
const ENGINE = process.env.MDEVFS_TEST_ENGINE ?? 'kernel';

t.test('kernel engine', async t => {
  const d = await startDaemon(t, { command: mdevfsMount('--driver', PLUGIN, '--engine', ENGINE) });

  t.test('fstat on a descriptor whose file has gone succeeds; read gives ENODEV', async t => {
    const u = uuid(0x7701);
    t.equal(await writeOnce(d.p(TA, 'create'), u), 36);
    const r = await sys([
      ['open', d.p('bus/mdev/devices', u, 'uevent'), 'O_RDONLY'],
      ['open', d.p('bus/mdev/devices', u, 'remove'), 'O_WRONLY'],
      ['write', 1, '1'],
      ['close', 1],
      ['fstat', 0],
      ['read', 0, 100],
    ]);
    t.match(r[4], { ok: { mode: 0o100644, size: 4096 } }, 'fstat answers, as sysfs does');
    t.same(r[5], { errno: 'ENODEV' });
  });

  t.test('utimens: access and modification times as given', async t => {
    const f = d.p(P, 'uevent');
    const r = await sh(`touch -a -d @1000000 ${f} && touch -m -d @2000000 ${f} && stat -c '%X %Y' ${f}`);
    t.equal(r.stdout.trim(), '1000000 2000000');
  });
});
