// For test harnesses: `mdevfs mount --background` returns once the tree is
// mounted, readiness without parsing prose (--json, --ready-fd, --pidfile),
// and `mdevfs umount` stops the daemon and returns once the mount is gone.
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { BIN, FIXTURES, REPO, isMounted, makeMountDir, run, startDaemon, mdevfsMount, serveTree, track } from '../helpers/daemon.js';
import { serverFsname } from '../../src/fuse/servers.js';
import { readOnce, writeOnce } from '../helpers/sys.js';
import { sleep, waitFor, scratchDir, exists } from '../helpers/util.js';

const PLUGIN = path.join(FIXTURES, 'test-plugin.ts');
const TA = 'devices/virtual/mtest/mtest/mdev_supported_types/mtest-a';
const mdevfs = (...args: string[]) => run(process.execPath, [BIN, ...args], { timeoutMs: 60_000 });

const alive = async (pid: number): Promise<boolean> => {
  const stat = await fsp.readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  return stat !== '' && !/^[ZX]/.test(stat.slice(stat.lastIndexOf(')') + 2));
};

/** Kill a daemon the test did not start as its own child (the teardown of a failed test). */
function reapPid(t: Test, pid: number): void {
  t.teardown(async () => {
    if (await alive(pid)) process.kill(pid, 'SIGKILL');
  });
}

const tempDir = (t: Test): Promise<string> => scratchDir(t, 'mdevfs-bg-');

t.test('--background returns once mounted; umount stops the daemon and returns once the mount is gone', async t => {
  const dir = await makeMountDir(t);
  const files = await tempDir(t);
  const pidfile = path.join(files, 'mdevfs.pid');
  const r = await mdevfs('mount', dir, '--background', '--json', '--pidfile', pidfile, '--driver', PLUGIN);
  t.equal(r.code, 0, r.stderr);
  const ready = JSON.parse(r.stdout) as { mountpoint: string; pid: number; profile: string; parents: number };
  reapPid(t, ready.pid);
  t.match(ready, { mountpoint: dir, profile: 'modern', parents: 2 });
  t.equal(r.stderr, '', 'nothing on stderr');
  // No waiting: the tree serves when the command returns.
  t.equal(await readOnce(path.join(dir, TA, 'name')), 'Type A\n');
  t.equal(await fsp.readFile(pidfile, 'utf8'), `${ready.pid}\n`, 'the pidfile holds the daemon pid');
  const stat = await fsp.readFile(`/proc/${ready.pid}/stat`, 'utf8');
  const [, , , sid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  t.equal(Number(sid), ready.pid, 'the daemon leads its own session (detached)');
  // The starter has exited: a daemon that followed it would be unmounting by now.
  await sleep(1000);
  t.equal(await readOnce(path.join(dir, TA, 'name')), 'Type A\n', 'still serving after its starter exited');

  const u = await mdevfs('umount', dir);
  t.equal(u.code, 0, u.stderr);
  t.equal(u.stdout + u.stderr, '', 'quiet');
  t.notOk(await isMounted(dir), 'the mount is gone when umount returns');
  t.notOk(await alive(ready.pid), 'the daemon has exited when umount returns');
  t.same(await fsp.readdir(files), [], 'the daemon removed its pidfile');
});

t.test('--background: a daemon that fails says why, and nothing is left', async t => {
  const dir = await makeMountDir(t);
  const r = await mdevfs('mount', dir, '--background', '--driver', path.join(FIXTURES, 'init-fails.ts'));
  t.equal(r.code, 1);
  t.equal(r.stderr, 'mdevfs: driver init-fails failed to initialise: no such hardware (ENODEV)\n', 'the daemon error, one line');
  t.equal(r.stdout, '');
  t.notOk(await isMounted(dir));
  const ps = await run('pgrep', ['-f', `mount --detached 3 ${dir}`]);
  t.equal(ps.stdout, '', 'no daemon left');
});

t.test('umount stops a foreground daemon, which exits 0', async t => {
  const d = await startDaemon(t, { command: mdevfsMount('--driver', PLUGIN) });
  const u = await mdevfs('umount', d.dir);
  t.equal(u.code, 0, u.stderr);
  t.notOk(await isMounted(d.dir));
  t.same(await d.exited, { code: 0, signal: null });
  t.match(d.stderr, /^\S+Z info {2}SIGTERM; unmounting /m, 'a timestamped, levelled line');
});

t.test('umount: one-line errors for what is not an mdevfs mount', async t => {
  const dir = await makeMountDir(t);
  const r1 = await mdevfs('umount', dir);
  t.equal(r1.code, 1);
  t.equal(r1.stderr, `mdevfs: ${dir} is not a mount point\n`);
  const r2 = await mdevfs('umount', '/proc');
  t.equal(r2.code, 1);
  t.equal(r2.stderr, 'mdevfs: /proc is not an mdevfs mount (it is proc)\n');
});

t.test('umount clears a stale mount whose daemon was killed', async t => {
  const d = await startDaemon(t, { command: mdevfsMount('--driver', PLUGIN, '--no-auto-unmount') });
  await d.stop('SIGKILL');
  t.ok(await isMounted(d.dir), 'stale');
  const u = await mdevfs('umount', d.dir);
  t.equal(u.code, 0, u.stderr);
  t.notOk(await isMounted(d.dir));
});

t.test("umount does not signal another root FUSE server that got a dead daemon's pid", async t => {
  // B: an unrelated root FUSE server (it holds /dev/fuse). A: a mount named as
  // a daemon that had B's pid before B (an earlier start time) would name it.
  const b = await startDaemon(t, { command: serveTree(), ready: /mounted/ });
  const stat = await fsp.readFile(`/proc/${b.proc.pid}/stat`, 'utf8');
  const bStart = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
  const fsname = serverFsname(b.proc.pid!, String(bStart - 1));
  const a = await startDaemon(t, { command: serveTree('--fsname', fsname), ready: /mounted/ });
  const u = await mdevfs('umount', a.dir);
  t.equal(u.code, 0, u.stderr);
  t.notOk(await isMounted(a.dir), "the named daemon is not that process: A's mount is detached");
  await sleep(300);
  t.ok(await alive(b.proc.pid!), 'B was not signalled');
  t.ok(await isMounted(b.dir), "B's mount is still there");
});

t.test('--ready-fd: the JSON ready line on a descriptor of the caller', async t => {
  const dir = await makeMountDir(t);
  const proc = spawn(process.execPath, [BIN, 'mount', dir, '--driver', PLUGIN, '--ready-fd', '3'], {
    cwd: REPO,
    stdio: ['ignore', 'ignore', 'pipe', 'pipe'],
  });
  track(proc, dir);
  const exited = new Promise(resolve => proc.on('exit', resolve));
  t.teardown(async () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    await exited;
  });
  let text = '';
  for await (const chunk of proc.stdio[3] as NodeJS.ReadableStream) text += String(chunk);
  // The descriptor is closed after the one line: EOF is readiness too.
  t.match(JSON.parse(text), { mountpoint: dir, pid: proc.pid, parents: 2 });
  t.equal(await readOnce(path.join(dir, TA, 'name')), 'Type A\n');
  const r = await mdevfs('mount', dir, '--ready-fd', '200');
  t.equal(r.stderr, 'mdevfs: --ready-fd 200 is not an open file descriptor\n');
});

t.test('--pidfile replaces a link planted at its name instead of writing through it', async t => {
  const files = await tempDir(t);
  const victim = path.join(files, 'victim');
  await fsp.writeFile(victim, 'precious\n');
  const pidfile = path.join(files, 'pid');
  await fsp.symlink(victim, pidfile);
  const d = await startDaemon(t, { command: mdevfsMount('--driver', PLUGIN, '--pidfile', pidfile) });
  const pid = d.proc.pid!;
  t.equal(await fsp.readFile(victim, 'utf8'), 'precious\n', 'the link target is untouched');
  t.notOk((await fsp.lstat(pidfile)).isSymbolicLink());
  t.equal(await fsp.readFile(pidfile, 'utf8'), `${pid}\n`);
  t.same((await fsp.readdir(files)).sort(), ['pid', 'victim'], 'no temporary file left');
});

t.test('--log-file: timestamped lines, levels, errno names; never through a link', async t => {
  const files = await tempDir(t);
  const log = path.join(files, 'mdevfs.log');
  const d = await startDaemon(t, { command: mdevfsMount('--driver', PLUGIN, '--log-file', log, '-v') });
  t.equal(await writeOnce(path.join(d.dir, 'bus/mdev/uevent'), 'bogus\n'), 'EINVAL');
  t.equal((await d.stop('SIGTERM')).code, 0);
  const lines = (await fsp.readFile(log, 'utf8')).trimEnd().split('\n');
  t.ok(
    lines.every(l => /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (error|warn |info |debug) /.test(l)),
    'every line: ISO time, level',
  );
  t.ok(
    lines.some(l => / debug write \/bus\/mdev\/uevent → EINVAL$/.test(l)),
    'a failed request, with its errno name',
  );
  t.ok(lines.some(l => / info {2}SIGTERM; unmounting /.test(l)));
  t.equal(d.stderr, '', 'nothing on stderr');
  t.equal((await fsp.stat(log)).mode & 0o777, 0o600);

  const link = path.join(files, 'link');
  await fsp.symlink(log, link);
  const dir = await makeMountDir(t);
  const r = await mdevfs('mount', dir, '--driver', PLUGIN, '--log-file', link);
  t.equal(r.code, 1);
  t.equal(r.stderr, `mdevfs: --log-file ${link} is a symbolic link (name the file it points to)\n`);
  t.notOk(await isMounted(dir));
});

t.test('--background: a starter killed before the tree is mounted takes the daemon with it', async t => {
  const dir = await makeMountDir(t);
  const files = await tempDir(t);
  const gate = path.join(files, 'gate');
  const argv = [BIN, 'mount', dir, '--background', '--call-timeout', '60000', '--driver', path.join(FIXTURES, 'gated-init.ts')];
  const starter = spawn(process.execPath, argv, { cwd: REPO, env: { ...process.env, MDEVFS_TEST_GATE: gate }, stdio: 'ignore' });
  track(starter);
  const starterExit = new Promise(resolve => starter.on('exit', resolve));
  // The daemon is loading its driver; its starter now dies.
  t.ok(await waitFor(() => exists(`${gate}.started`), 30_000), 'the daemon started');
  const pgrep = await run('pgrep', ['-f', `mount --detached 3 ${dir}`]);
  const pid = Number(pgrep.stdout.trim());
  t.ok(pid > 0, 'found the daemon');
  reapPid(t, pid);
  starter.kill('SIGKILL');
  await starterExit;
  await fsp.writeFile(gate, '');
  t.ok(await waitFor(async () => !(await alive(pid)), 20_000), 'the daemon exited');
  t.notOk(await isMounted(dir), 'nothing mounted');
});

t.test('--log-file and --pidfile: never a hard link, never inside the mount point', async t => {
  const files = await tempDir(t);
  const victim = path.join(files, 'victim');
  await fsp.writeFile(victim, 'precious\n');
  const linked = path.join(files, 'log');
  await fsp.link(victim, linked);
  const dir = await makeMountDir(t);
  const r1 = await mdevfs('mount', dir, '--driver', PLUGIN, '--log-file', linked);
  t.equal(r1.code, 1);
  t.equal(r1.stderr, `mdevfs: --log-file ${linked} has 2 hard links\n`);
  t.equal(await fsp.readFile(victim, 'utf8'), 'precious\n');

  for (const flag of ['--log-file', '--pidfile']) {
    const inside = path.join(dir, 'x');
    const r = await mdevfs('mount', dir, '--driver', PLUGIN, flag, inside);
    t.equal(r.stderr, `mdevfs: ${flag} ${inside} is inside the mount point ${dir}\n`, flag);
    t.same(await fsp.readdir(dir), [], 'nothing created in the mount point');
  }
  t.notOk(await isMounted(dir));
});
