// Errors that name their cause in one line: where a driver's syntax error is,
// which file a --driver path meant, fusermount's own reason for refusing a
// mount, and a Node.js too old to run mdevfs at all.
import t from 'tap';
import { existsSync, promises as fsp, readFileSync } from 'node:fs';
import path from 'node:path';
import { BIN, REPO, makeMountDir, run } from '../helpers/daemon.js';
import { scratchDir } from '../helpers/util.js';

const NOBODY = '65534';

async function scratch(t: { teardown(fn: () => unknown): void }, mode = 0o700): Promise<string> {
  const dir = await scratchDir(t, 'mdevfs-errors-');
  await fsp.chmod(dir, mode);
  return dir;
}

/** `mdevfs mount <dir> ...args` from `cwd`; nothing is expected to mount. */
const mountFrom = (cwd: string, dir: string, ...args: string[]) =>
  run('sh', ['-c', 'cd "$1" && shift && exec "$@"', 'sh', cwd, process.execPath, BIN, 'mount', dir, ...args], { timeoutMs: 30_000 });

t.test("a driver's syntax error: file:line:col", async t => {
  const tmp = await scratch(t);
  const dir = await makeMountDir(t);
  const files: Record<string, string> = {
    'syn.ts': 'const x: number = 1;\nexport default {\n  name: "x",\n  init() { return x +; },\n};\n',
    'syn.mts': 'const x: number = 1;\nexport default { name: "x", init() { return x +; } };\n',
    'syn.mjs': 'export default { name: "x", init() { foo(1 2) } };\n',
    'syn.cjs': 'const a = 1;\nmodule.exports = { name: "c", init() { a( } };\n',
  };
  for (const [f, text] of Object.entries(files)) await fsp.writeFile(path.join(tmp, f), text);
  for (const [f, where] of [
    ['syn.ts', `${tmp}/syn.ts:4:22: Unexpected ";"`],
    ['syn.mts', `${tmp}/syn.mts:2:48: Unexpected ";"`],
    ['syn.mjs', `${tmp}/syn.mjs:1:42: SyntaxError: missing ) after argument list`],
    ['syn.cjs', `${tmp}/syn.cjs:2:43: SyntaxError: Unexpected token '}'`],
  ] as const) {
    const r = await mountFrom(tmp, dir, '--driver', `./${f}`);
    t.equal(r.code, 1, f);
    t.equal(r.stderr, `mdevfs: cannot load driver ./${f}: ${where}\n`, f);
  }
});

t.test('a CommonJS driver loads, and can require mdevfs', async t => {
  const tmp = await scratch(t);
  const dir = await makeMountDir(t);
  // init fails on purpose, with mdevfs's MdevError: the message shows the require worked.
  await fsp.writeFile(
    path.join(tmp, 'drv.cjs'),
    'const { MdevError } = require("mdevfs");\nmodule.exports = { name: "cjs", init() { throw new MdevError("ENOSPC", "loaded"); } };\n',
  );
  const r = await mountFrom(tmp, dir, '--driver', './drv.cjs');
  t.equal(r.stderr, 'mdevfs: driver cjs failed to initialise: loaded (ENOSPC)\n');
});

t.test('--driver name.ts is a file in the current directory, and the message says which', async t => {
  const tmp = await scratch(t);
  const dir = await makeMountDir(t);
  const r = await mountFrom(tmp, dir, '--driver', 'my-driver.ts');
  t.equal(r.code, 1);
  t.equal(r.stderr, `mdevfs: cannot load driver my-driver.ts: no such file ${tmp}/my-driver.ts\n`);
});

t.test('a Node.js below "engines" is refused with the fix, before anything loads', async t => {
  const engines = (JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { engines: { node: string } }).engines.node;
  const min = /^>=(\d+\.\d+)$/.exec(engines)?.[1];
  t.ok(min, `engines is ">=major.minor" (${engines})`);
  const tmp = await scratch(t);
  const fake = path.join(tmp, 'node18.cjs');
  await fsp.writeFile(fake, "Object.defineProperty(process.versions, 'node', { value: '18.19.0' });\n");
  const old = await run(process.execPath, ['--require', fake, BIN, '--version']);
  t.equal(old.code, 1);
  t.match(old.stderr, new RegExp(`^mdevfs: needs Node\\.js >= ${min!.replace('.', '\\.')}, but \\S+ is 18\\.19\\.0; install Node >= `));
  t.match(old.stderr, /Debian 12 use NodeSource or nvm/);
  t.equal(old.stdout, '');
  const now = await run(process.execPath, [BIN, '--version']);
  t.equal(now.code, 0, 'this Node passes');
});

// env -u: without the NODE_OPTIONS tap's processinfo adds to every child (its exit hook would write tap's files as nobody).
const nobody = (...argv: string[]) =>
  run('env', ['-u', 'NODE_OPTIONS', 'setpriv', '--reuid', NOBODY, '--regid', NOBODY, '--clear-groups', ...argv]);
// The user must be able to run node and read the clone.
const probe = await nobody(process.execPath, '-e', `require('fs').accessSync(${JSON.stringify(BIN)})`);
const conf = existsSync('/etc/fuse.conf') ? readFileSync('/etc/fuse.conf', 'utf8') : '';

t.test(
  "fusermount's own reason when it refuses a mount (a non-root user)",
  { skip: probe.code === 0 ? false : `uid ${NOBODY} cannot run ${process.execPath} on ${BIN}: ${probe.stderr.trim()}` },
  async t => {
    const tmp = await scratch(t, 0o755);
    await fsp.writeFile(path.join(tmp, 'drv.mjs'), 'export default { name: "nothing", init() {} };\n');
    const asNobody = (dir: string, ...args: string[]) => nobody(process.execPath, BIN, 'mount', dir, '--driver', `${tmp}/drv.mjs`, ...args);
    const unmount = (dir: string) => run('fusermount', ['-uz', dir]);

    const roots = path.join(tmp, 'roots');
    await fsp.mkdir(roots, { mode: 0o755 });
    t.teardown(() => unmount(roots));
    const r = await asNobody(roots);
    t.equal(r.code, 1);
    t.match(r.stderr, new RegExp(`^mdevfs: cannot mount ${roots}: \\S*fusermount: user has no write access to mountpoint ${roots}\\n$`));

    t.test(
      '--allow-other without user_allow_other',
      { skip: /^\s*user_allow_other/m.test(conf) && '/etc/fuse.conf has user_allow_other' },
      async t => {
        const mine = path.join(tmp, 'mine');
        await fsp.mkdir(mine, { mode: 0o755 });
        await fsp.chown(mine, Number(NOBODY), Number(NOBODY));
        t.teardown(() => unmount(mine));
        const o = await asNobody(mine, '--allow-other');
        t.equal(o.code, 1);
        t.match(
          o.stderr,
          new RegExp(
            `^mdevfs: cannot mount ${mine}: \\S*fusermount: option allow_other only allowed if 'user_allow_other' is set in /etc/fuse.conf\\n$`,
          ),
        );
      },
    );
  },
);
