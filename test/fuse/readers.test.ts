// The kernel engine's two ways of reading /dev/fuse (src/fuse/kernel/choose-reader.ts),
// each through a real mount: the event loop's (Node's internal pipe_wrap) and the worker
// thread's; and the fallback to the worker when the internal is gone (simulated by a
// preload, test/fixtures/no-pipe-wrap.mjs), or a clean failure when the loop is forced.
// `MDEVFS_FUSE_READER=worker|loop npx tap test/fuse/` runs the other FUSE tests on either.
import t from 'tap';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { BIN, FIXTURES, isMounted, makeMountDir, mdevfsMount, run, sh, startDaemon } from '../helpers/daemon.js';
import { sys, writeOnce } from '../helpers/sys.js';
import { uuid } from '../helpers/util.js';
import { P, TA } from '../fixtures/test-plugin.js';

const PLUGIN = path.join(FIXTURES, 'test-plugin.ts');
const NO_PIPE_WRAP = `--import ${pathToFileURL(path.join(FIXTURES, 'no-pipe-wrap.mjs')).href}`;

function envWith(vars: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, MDEVFS_ENGINE: 'kernel' };
  for (const [k, v] of Object.entries(vars)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

const cases = [
  { name: 'event loop (default)', env: { MDEVFS_FUSE_READER: undefined }, log: /reading \/dev\/fuse in the event loop/ },
  { name: 'event loop (forced)', env: { MDEVFS_FUSE_READER: 'loop' }, log: /reading \/dev\/fuse in the event loop/ },
  {
    name: 'worker (forced)',
    env: { MDEVFS_FUSE_READER: 'worker' },
    log: /reading \/dev\/fuse in a worker thread \(MDEVFS_FUSE_READER=worker\)/,
  },
  {
    name: 'worker (pipe_wrap gone)',
    env: { MDEVFS_FUSE_READER: undefined, NODE_OPTIONS: NO_PIPE_WRAP },
    log: /reading \/dev\/fuse in a worker thread \(the event loop cannot: No such module: pipe_wrap\)/,
  },
];

for (const c of cases) {
  t.test(`reader: ${c.name}`, async t => {
    const d = await startDaemon(t, { command: mdevfsMount('--driver', PLUGIN, '--verbose'), env: envWith(c.env) });
    t.match(d.stderr, c.log, 'the daemon says which reader serves');
    const u = uuid(0x7801);
    t.equal(await writeOnce(d.p(TA, 'create'), u), 36, 'create');
    const r = await sh(
      `cat ${d.p(TA, 'available_instances')}; ls ${d.p('bus/mdev/devices')}; cat ${d.p(P, 'mdev_supported_types', path.basename(TA), 'name')} >/dev/null && echo read`,
    );
    t.match(r.stdout, new RegExp(`^\\d+\\n${u}\\nread\\n$`), 'read, readdir, a deep path');
    // 100 parallel readers: requests overlap, every one answered once.
    const par = await sh(`for i in $(seq 100); do cat ${d.p(TA, 'available_instances')} & done | sort -u | wc -l; wait`);
    t.equal(par.stdout.trim(), '1');
    const rm = await sys([
      ['open', d.p('bus/mdev/devices', u, 'remove'), 'O_WRONLY'],
      ['write', 0, '1'],
      ['close', 0],
      ['lstat', d.p('bus/mdev/devices', u)],
    ]);
    t.same(rm[3], { errno: 'ENOENT' }, 'removed');
  });
}

t.test('MDEVFS_FUSE_READER=loop without pipe_wrap: the mount fails and leaves nothing mounted', async t => {
  const dir = await makeMountDir(t);
  const r = await run(process.execPath, [BIN, 'mount', dir, '--driver', PLUGIN], {
    env: envWith({ MDEVFS_FUSE_READER: 'loop', NODE_OPTIONS: NO_PIPE_WRAP }),
    timeoutMs: 20_000,
  });
  t.not(r.code, 0);
  t.match(r.stderr, /cannot read \/dev\/fuse in the event loop: No such module: pipe_wrap/);
  t.notOk(await isMounted(dir), 'not mounted');
});
