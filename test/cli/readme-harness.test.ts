// The README's Python test suite, run as printed: python3 + unittest,
// `mdevfs mount --background` in setUp, `mdevfs umount` in its cleanup.
import t from 'tap';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BIN, REPO, isMounted, makeMountDir, run } from '../helpers/daemon.js';
import { PYTHON } from '../helpers/util.js';

/** The fenced block of `lang` under the README heading `heading`. */
async function readmeBlock(heading: string, lang: string): Promise<string> {
  const text = await fsp.readFile(path.join(REPO, 'README.md'), 'utf8');
  const section = text.slice(text.indexOf(`\n${heading}\n`));
  const m = new RegExp('```' + lang + '\\n([\\s\\S]*?)```').exec(section);
  if (!m) throw new Error(`no ${lang} block under ${heading}`);
  return m[1]!;
}

t.test('the Python example: mounted in setUp, unmounted in its cleanup', async t => {
  const scratch = await fsp.mkdtemp(path.join(os.tmpdir(), 'mdevfs-py-'));
  // Its own TMPDIR, so the test can see what the example leaves behind.
  const tmp = path.join(scratch, 'tmp');
  await fsp.mkdir(tmp);
  t.teardown(async () => {
    for (const d of await fsp.readdir(tmp).catch(() => [])) {
      await run('fusermount', ['-uz', path.join(tmp, d)]);
    }
    await fsp.rm(scratch, { recursive: true, force: true });
  });
  const file = path.join(scratch, 'test_mdev.py');
  await fsp.writeFile(file, await readmeBlock('### From a Python test suite', 'python'));
  const r = await run('env', [`MDEVFS=${BIN}`, `TMPDIR=${tmp}`, PYTHON, file, '-v'], { timeoutMs: 120_000 });
  t.equal(r.code, 0, r.stderr);
  t.match(r.stderr, /test_create_and_remove \(.*\) \.\.\. ok/);
  t.match(r.stderr, /\nOK\n/);
  // tempfile.mkdtemp() names start with "tmp" (a driver compiler may cache there too).
  t.same(
    (await fsp.readdir(tmp)).filter(n => n.startsWith('tmp')),
    [],
    'the mount point was unmounted and removed',
  );
  const left = (await fsp.readFile('/proc/self/mountinfo', 'utf8')).split('\n').filter(l => l.includes(tmp));
  t.same(left, [], 'no mount left');
  t.notOk(await isMounted(tmp));
});

t.test('the Node example: mount() in the process, files through child processes and fs.promises', async t => {
  const scratch = await fsp.mkdtemp(path.join(os.tmpdir(), 'mdevfs-node-'));
  t.teardown(() => fsp.rm(scratch, { recursive: true, force: true }));
  const dir = await makeMountDir(t);
  // 'mdevfs' resolves as in a project that installed it: node_modules/mdevfs → this package (its dist/).
  await fsp.mkdir(path.join(scratch, 'node_modules'));
  await fsp.symlink(REPO, path.join(scratch, 'node_modules/mdevfs'));
  const file = path.join(scratch, 'example.mts');
  await fsp.writeFile(file, (await readmeBlock('### From a Node test suite', 'ts')).replaceAll("'/tmp/sys'", JSON.stringify(dir)));
  const r = await run(process.execPath, ['--import=tsx', file], { timeoutMs: 60_000 });
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout, 'mtty-2\n11\n');
  t.notOk(await isMounted(dir), 'unmounted');
});
