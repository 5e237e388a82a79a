// mdevfs runs as root: it must not run code another user could have planted
// (tsx's disk cache in a shared temporary directory), nor create or write
// files where a link leads (`--uevents` into the mount point, or through a
// link another user owns, or capture's temporary file through a planted link).
import t from 'tap';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { BIN, isMounted, makeMountDir, run, spawnChild, startDaemon, mdevfsMount } from '../helpers/daemon.js';
import { scratchDir } from '../helpers/util.js';

const NOBODY = 65534;

const scratch = (t: { teardown(fn: () => unknown): void }): Promise<string> => scratchDir(t, 'mdevfs-safe-');

t.test("a TypeScript driver is compiled without tsx's cache, even where another user made one", async t => {
  const tmp = await scratch(t);
  const shared = path.join(tmp, 'shared'); // stands for /tmp
  await fsp.mkdir(shared);
  await fsp.chmod(shared, 0o1777);
  const cache = path.join(shared, `tsx-${process.geteuid!()}`);
  await fsp.mkdir(cache, { mode: 0o777 });
  await fsp.chown(cache, NOBODY, NOBODY);
  // Two TypeScript files, so both the driver and what it imports are compiled.
  await fsp.writeFile(path.join(tmp, 'who.ts'), "export const who: string = 'genuine';\n");
  await fsp.writeFile(
    path.join(tmp, 'drv.ts'),
    "import { MdevError } from 'mdevfs';\nimport { who } from './who.js';\n" +
      "export default { name: 'cached', init() { throw new MdevError('ENOSPC', who); } };\n",
  );
  const dir = await makeMountDir(t);
  const c = spawnChild(t, [process.execPath, BIN, 'mount', dir, '--driver', path.join(tmp, 'drv.ts')], { ...process.env, TMPDIR: shared });
  t.equal((await c.exited).code, 1);
  t.equal(c.err(), 'mdevfs: driver cached failed to initialise: genuine (ENOSPC)\n');
  t.same(await fsp.readdir(cache), [], 'nothing written to (or read from) the cache directory');
  t.same(await fsp.readdir(shared), [path.basename(cache)], 'no other cache directory made');
});

t.test('--uevents is refused where it leads into the mount point, and through a link another user owns', async t => {
  const tmp = await scratch(t);
  const dir = await makeMountDir(t);
  await fsp.symlink(dir, path.join(tmp, 'dirlink'));
  await fsp.symlink(path.join(dir, 'ev.log'), path.join(tmp, 'filelink')); // dangling, into the mount point
  await fsp.symlink(path.join(tmp, 'victim'), path.join(tmp, 'theirs'));
  await fsp.lchown(path.join(tmp, 'theirs'), NOBODY, NOBODY);
  await fsp.symlink('/dev/null', path.join(tmp, 'theirs-dev')); // a device is written as named, but not through their link
  await fsp.lchown(path.join(tmp, 'theirs-dev'), NOBODY, NOBODY);
  for (const [arg, why] of [
    [path.join(tmp, 'dirlink/ev.log'), `it leads into the mount point ${dir} \\(as ${dir}/ev.log\\)`],
    [path.join(tmp, 'filelink'), `it leads into the mount point ${dir} \\(as ${dir}/ev.log\\)`],
    [path.join(tmp, 'theirs'), `${tmp}/theirs is a symbolic link owned by uid ${NOBODY} \\(not followed\\)`],
    [path.join(tmp, 'theirs-dev'), `${tmp}/theirs-dev is a symbolic link owned by uid ${NOBODY} \\(not followed\\)`],
  ] as const) {
    const c = spawnChild(t, mdevfsMount('--uevents', arg)(dir));
    t.equal((await c.exited).code, 1, arg);
    t.match(c.err(), new RegExp(`^mdevfs: --uevents: cannot open ${arg}: ${why}\\n$`), arg);
    t.same(await fsp.readdir(dir), [], 'nothing created in the mount point');
    t.notOk(await isMounted(dir));
  }
  t.same((await fsp.readdir(tmp)).sort(), ['dirlink', 'filelink', 'theirs', 'theirs-dev'], 'no victim file');

  // A link of our own to a file elsewhere is followed, as before.
  await fsp.symlink(path.join(tmp, 'real.log'), path.join(tmp, 'mine'));
  const d = await startDaemon(t, { dir, command: mdevfsMount('--uevents', path.join(tmp, 'mine')) });
  t.match(await fsp.readFile(path.join(tmp, 'real.log'), 'utf8'), /^\{"ACTION":"change","DEVPATH":"\/devices\/virtual\/mtty\/mtty"/m);
  await d.stop();
});

t.test('capture -o writes its temporary file afresh, never through a link planted at a guessable name', async t => {
  const tmp = await scratch(t);
  const d = await startDaemon(t);
  const victim = path.join(tmp, 'victim');
  await fsp.writeFile(victim, 'keep\n');
  // `exec` keeps the shell's pid: the link is where a pid-named temporary file would go.
  const r = await run('sh', [
    '-c',
    'ln -s "$2" "$1/.out.json.$$.tmp" && chown -h 65534 "$1/.out.json.$$.tmp" && exec "$3" "$4" capture --sysfs "$5" -o "$1/out.json"',
    'sh',
    tmp,
    victim,
    process.execPath,
    BIN,
    d.dir,
  ]);
  t.equal(r.code, 0, r.stderr);
  t.equal(await fsp.readFile(victim, 'utf8'), 'keep\n', 'the link target is untouched');
  t.ok((await fsp.lstat(path.join(tmp, 'out.json'))).isFile(), 'out.json is a file of its own');
  t.match(await fsp.readFile(path.join(tmp, 'out.json'), 'utf8'), /"parents"/);
});
