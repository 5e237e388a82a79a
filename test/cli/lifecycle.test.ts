// Mount lifecycle: signals, crashes with and without auto_unmount, stale-mount
// recovery, and the one-line errors of every preflight check.
import t, { type Test } from 'tap';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startDaemon, mdevfsMount, makeMountDir, run, isMounted, BIN, FIXTURES, REPO } from '../helpers/daemon.js';
import { one, readOnce, writeOnce } from '../helpers/sys.js';
import { waitFor } from '../helpers/util.js';

const PLUGIN = path.join(FIXTURES, 'test-plugin.ts');
const TA = 'devices/virtual/mtest/mtest/mdev_supported_types/mtest-a';

/** Exactly one line on stderr, "mdevfs: ...", no stack trace, exit 1. */
function oneLineError(t: Test, r: { code: number; stderr: string }, pattern: RegExp): void {
  t.equal(r.code, 1, 'exit status 1');
  const lines = r.stderr.trimEnd().split('\n');
  t.equal(lines.length, 1, `one line: ${JSON.stringify(r.stderr)}`);
  t.match(lines[0], /^mdevfs: /);
  t.match(lines[0], pattern);
  t.notMatch(r.stderr, /\n\s+at /, 'no stack trace');
}

t.test('SIGINT unmounts cleanly', async t => {
  const d = await startDaemon(t, { command: mdevfsMount('--driver', PLUGIN) });
  t.equal(await readOnce(d.p(`${TA}/name`)), 'Type A\n');
  const e = await d.stop('SIGINT');
  t.equal(e.code, 0);
  t.notOk(await isMounted(d.dir));
});

t.test('a reader that went away (EPIPE on stdout/stderr) does not wedge the daemon', async t => {
  const d = await startDaemon(t, { command: mdevfsMount('--driver', PLUGIN, '--verbose') });
  d.proc.stdout!.destroy();
  d.proc.stderr!.destroy();
  // Verbose traces of failing requests now go to a closed pipe.
  for (let i = 0; i < 3; i++) t.equal(await writeOnce(d.p('bus/mdev/uevent'), 'bogus\n'), 'EINVAL');
  t.equal(await readOnce(d.p(`${TA}/name`)), 'Type A\n', 'still serving');
  const e = await d.stop('SIGTERM', 10_000);
  t.equal(e.code, 0, 'exits cleanly on SIGTERM');
  t.notOk(await isMounted(d.dir));
});

t.test('kill -9 with auto_unmount: the mount goes away by itself', async t => {
  const d = await startDaemon(t, { command: mdevfsMount('--driver', PLUGIN) });
  await d.stop('SIGKILL');
  t.ok(await waitFor(async () => !(await isMounted(d.dir)), 5000, 100), 'unmounted by the fusermount helper');
});

t.test('a stale mount is recovered by the next mount', async t => {
  const dir = await makeMountDir(t);
  const first = await startDaemon(t, { dir, command: mdevfsMount('--driver', PLUGIN, '--no-auto-unmount') });
  await first.stop('SIGKILL');
  t.ok(await isMounted(dir), 'still mounted after the crash');
  t.same(await one(['stat', dir]), { errno: 'ENOTCONN' }, 'Transport endpoint is not connected');
  const second = await startDaemon(t, { dir, command: mdevfsMount('--driver', PLUGIN) });
  t.match(second.stderr, /stale mount/);
  t.equal(await readOnce(second.p(`${TA}/name`)), 'Type A\n', 'the new mount answers');
  const mounts = (await fsp.readFile('/proc/self/mountinfo', 'utf8')).split('\n').filter(l => l.split(' ')[4] === dir);
  t.equal(mounts.length, 1, 'exactly one mount on the directory');
  t.equal((await second.stop('SIGTERM')).code, 0);
  t.notOk(await isMounted(dir));
});

const hasSetpriv = (await run('bash', ['-c', 'command -v setpriv'])).code === 0;
t.test(
  '--allow-other: other users get ordinary DAC, root the sysfs open check',
  { skip: hasSetpriv ? false : 'setpriv missing' },
  async t => {
    const dir = await makeMountDir(t);
    await fsp.chmod(dir, 0o755);
    const d = await startDaemon(t, { dir, command: mdevfsMount('--driver', PLUGIN, '--allow-other') });
    const opts = (await fsp.readFile('/proc/self/mountinfo', 'utf8')).split('\n').find(l => l.split(' ')[4] === dir) ?? '';
    t.match(opts, /allow_other/);
    const asNobody = (cmd: string) => run('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'sh', '-c', cmd]);
    const r1 = await asNobody(`cat ${d.p(`${TA}/name`)}`);
    t.equal(r1.stdout, 'Type A\n', r1.stderr);
    const r2 = await asNobody(`echo 83b8f4f2-509f-382f-3c1e-e6bfe0fa1001 > ${d.p(`${TA}/create`)}`);
    t.match(r2.stderr, /Permission denied/);
    t.equal(await one(['access', d.p(`${TA}/create`), 'R_OK']), true, 'root access() still succeeds');
    t.same(await readOnce(d.p(`${TA}/create`)), { errno: 'EACCES' }, 'root open still fails');
  },
);

t.test('one-line errors', async t => {
  const mount = (dir: string, ...args: string[]) => run(process.execPath, [BIN, 'mount', dir, ...args], { timeoutMs: 60_000 });

  t.test('mount point missing', async t => {
    oneLineError(t, await mount('/nonexistent/mdevfs-test', '--driver', PLUGIN), /mount point \/nonexistent\/mdevfs-test does not exist/);
  });

  t.test('mount point not empty', async t => {
    const dir = await makeMountDir(t);
    await fsp.writeFile(path.join(dir, 'x'), '');
    t.teardown(() => fsp.unlink(path.join(dir, 'x')));
    oneLineError(t, await mount(dir, '--driver', PLUGIN), /is not empty/);
  });

  t.test('mount point is a file', async t => {
    const dir = await makeMountDir(t);
    const f = path.join(dir, 'f');
    await fsp.writeFile(f, '');
    t.teardown(() => fsp.unlink(f));
    oneLineError(t, await mount(f, '--driver', PLUGIN), /is not a directory/);
  });

  t.test('mount point already mounted', async t => {
    const d = await startDaemon(t, { command: mdevfsMount('--driver', PLUGIN) });
    oneLineError(t, await mount(d.dir, '--driver', PLUGIN), /already a mount point \(fuse\.mdevfs/);
    t.equal(await readOnce(d.p(`${TA}/name`)), 'Type A\n', 'the first mount is untouched');
  });

  t.test('plugins that fail to load', async t => {
    const dir = await makeMountDir(t);
    oneLineError(t, await mount(dir, '--driver', './no/such/driver.ts'), /cannot load driver \.\/no\/such\/driver\.ts: no such file/);
    oneLineError(t, await mount(dir, '--driver', path.join(FIXTURES, 'bad-export.ts')), /not a VendorPlugin/);
    oneLineError(t, await mount(dir, '--driver', path.join(FIXTURES, 'throws-on-import.ts')), /this driver module is broken$/);
    oneLineError(
      t,
      await mount(dir, '--driver', path.join(FIXTURES, 'init-fails.ts')),
      /driver init-fails failed to initialise: no such hardware \(ENODEV\)/,
    );
    oneLineError(t, await mount(dir, '--driver', 'no-such-mdevfs-module'), /cannot load driver module no-such-mdevfs-module/);
    t.notOk(await isMounted(dir), 'nothing mounted');
    t.same(await fsp.readdir(dir), []);
  });

  // The host's libfuse, /dev/fuse and fusermount are hidden in a private mount namespace.
  const inNamespace = async (t: Test, setup: string, ...extra: string[]) => {
    const dir = await makeMountDir(t);
    const scratch = await fsp.mkdtemp(path.join(os.tmpdir(), 'mdevfs-ns-'));
    t.teardown(() => fsp.rm(scratch, { recursive: true, force: true }));
    const script = `set -e; ${setup.replaceAll('$S', scratch)}; exec ${process.execPath} ${BIN} mount ${dir} --driver ${PLUGIN} ${extra.join(' ')}`;
    return run('unshare', ['--mount', '--propagation', 'private', '--', 'bash', '-c', script], { timeoutMs: 60_000 });
  };

  t.test('libfuse.so.2 missing', async t => {
    const r = await inNamespace(
      t,
      'touch $S/empty; for f in /usr/lib/x86_64-linux-gnu/libfuse.so.2.* /lib/x86_64-linux-gnu/libfuse.so.2.*; do [ -f "$f" ] && mount --bind $S/empty "$f" || true; done',
      // Only fuse-native needs libfuse and fusermount; the kernel engine mounts without them.
      '--engine fuse-native',
    );
    oneLineError(t, r, /cannot load libfuse\.so\.2 \(install the libfuse2 package\)/);
  });

  t.test('fusermount missing', async t => {
    const r = await inNamespace(t, 'touch $S/empty; mount --bind $S/empty "$(command -v fusermount)"', '--engine fuse-native');
    oneLineError(t, r, /fusermount not found/);
  });

  t.test('/dev/fuse missing', async t => {
    const r = await inNamespace(
      t,
      'mkdir $S/dev; mount --bind /dev $S/dev; mount -t tmpfs none /dev; touch /dev/null; mount --bind $S/dev/null /dev/null',
    );
    oneLineError(t, r, /\/dev\/fuse is missing/);
  });
});

t.test('--help and --version', async t => {
  const v = await run(process.execPath, [BIN, '--version']);
  const pkg = JSON.parse(await fsp.readFile(path.join(REPO, 'package.json'), 'utf8')) as { version: string };
  t.equal(v.stdout, `${pkg.version}\n`);
  t.equal(v.code, 0);
  const h = await run(process.execPath, [BIN, '--help']);
  t.equal(h.code, 0);
  t.match(h.stdout, /Usage: mdevfs \[options\] \[command\]/);
  t.match(h.stdout, /mount \[options\] <dir>/);
  const mh = await run(process.execPath, [BIN, 'mount', '--help']);
  for (const o of [
    '--driver <file|module>',
    '--profile <profile>',
    '--verbose',
    '--allow-other',
    '--no-auto-unmount',
    '--call-timeout <ms>',
  ]) {
    t.match(mh.stdout, o);
  }
  const bad = await run(process.execPath, [BIN, 'mount', '/tmp', '--profile', 'ancient']);
  t.equal(bad.code, 1);
  t.match(bad.stderr, /Allowed choices are modern, legacy/);
  const unknown = await run(process.execPath, [BIN, 'frobnicate']);
  t.equal(unknown.code, 1);
  t.match(unknown.stderr, /unknown command 'frobnicate'/);
});
