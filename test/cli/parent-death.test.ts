// A foreground `mdevfs mount` ends with the processes that started it: a
// wrapper killed above it (npx, which runs the bin through `sh -c`) must not
// leave the daemon orphaned with its mount up.
import t, { type Test } from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BIN, FIXTURES, isMounted, makeMountDir, run, track } from '../helpers/daemon.js';
import { readOnce } from '../helpers/sys.js';
import { sleep, waitFor, exists } from '../helpers/util.js';

const PLUGIN = path.join(FIXTURES, 'test-plugin.ts');
const TA = 'devices/virtual/mtest/mtest/mdev_supported_types/mtest-a';

const alive = async (pid: number): Promise<boolean> => {
  const stat = await fsp.readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  return stat !== '' && !/^[ZX]/.test(stat.slice(stat.lastIndexOf(')') + 2));
};

/** Start `argv` (a wrapper that runs mdevfs mount --json); resolve with the daemon's pid from its ready line. */
async function startWrapped(t: Test, argv: string[], cwd: string, dir: string): Promise<{ wrapper: ChildProcess; pid: number }> {
  const wrapper = spawn(argv[0]!, argv.slice(1), { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  track(wrapper, dir);
  let out = '';
  let err = '';
  wrapper.stderr!.on('data', d => (err += d));
  const pid = await new Promise<number>((resolve, reject) => {
    wrapper.stdout!.on('data', d => {
      out += d;
      const line = out.split('\n').find(l => l.startsWith('{'));
      if (line) resolve((JSON.parse(line) as { pid: number }).pid);
    });
    wrapper.on('exit', code => reject(new Error(`wrapper exited (${code}) before the mount was ready: ${err}`)));
  });
  // Whatever happens, nothing of this test outlives it.
  t.teardown(async () => {
    for (const p of [pid, wrapper.pid!]) if (await alive(p)) process.kill(p, 'SIGKILL');
  });
  return { wrapper, pid };
}

async function gone(t: Test, dir: string, pid: number): Promise<void> {
  t.ok(await waitFor(async () => !(await alive(pid)), 10_000), 'the daemon has exited');
  t.notOk(await isMounted(dir), 'and its mount is gone');
}

const hasNpx = (await run('bash', ['-c', 'command -v npx'])).code === 0;
t.test('SIGTERM to npx mdevfs mount: the daemon unmounts and exits', { skip: hasNpx ? false : 'npx missing' }, async t => {
  // A project with mdevfs in node_modules/.bin, as npm installs it; --no-install: nothing is fetched.
  const project = await fsp.mkdtemp(path.join(os.tmpdir(), 'mdevfs-npx-'));
  t.teardown(() => fsp.rm(project, { recursive: true, force: true }));
  await fsp.mkdir(path.join(project, 'node_modules/.bin'), { recursive: true });
  await fsp.symlink(BIN, path.join(project, 'node_modules/.bin/mdevfs'));
  await fsp.writeFile(path.join(project, 'package.json'), '{"name":"harness","private":true}\n');
  const dir = await makeMountDir(t);
  const { wrapper, pid } = await startWrapped(
    t,
    ['npx', '--no-install', 'mdevfs', 'mount', dir, '--json', '--driver', PLUGIN],
    project,
    dir,
  );
  t.equal(await readOnce(path.join(dir, TA, 'name')), 'Type A\n', 'serving through npx');
  wrapper.kill('SIGTERM');
  await gone(t, dir, pid);
});

t.test('SIGKILL to a wrapper above sh: the daemon unmounts and exits although its own parent lives', async t => {
  const dir = await makeMountDir(t);
  // wrapper (node) → sh → mdevfs; `; true` keeps sh from exec'ing, so sh stays the daemon's parent.
  const script = `require('child_process').spawn('sh', ['-c', process.argv[1] + '; true'], { stdio: 'inherit' })`;
  const mount = [process.execPath, BIN, 'mount', dir, '--json', '--driver', PLUGIN].join(' ');
  const { wrapper, pid } = await startWrapped(t, [process.execPath, '-e', script, mount], os.tmpdir(), dir);
  const sh = Number((await fsp.readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ')[1]);
  t.not(sh, wrapper.pid, "the daemon's parent is sh");
  t.teardown(async () => {
    if (await alive(sh)) process.kill(sh, 'SIGKILL');
  });
  wrapper.kill('SIGKILL');
  await gone(t, dir, pid);
});

t.test('a starter killed while the drivers load: the daemon stops as soon as it has mounted', async t => {
  const dir = await makeMountDir(t);
  const scratch = await fsp.mkdtemp(path.join(os.tmpdir(), 'mdevfs-gate-'));
  t.teardown(() => fsp.rm(scratch, { recursive: true, force: true }));
  const gate = path.join(scratch, 'gate');
  const mount = [process.execPath, BIN, 'mount', dir, '--call-timeout', '60000', '--driver', path.join(FIXTURES, 'gated-init.ts')];
  const wrapper = spawn('sh', ['-c', `${mount.join(' ')}; true`], { env: { ...process.env, MDEVFS_TEST_GATE: gate }, stdio: 'ignore' });
  track(wrapper, dir);
  t.ok(await waitFor(() => exists(`${gate}.started`), 30_000), 'the driver is loading');
  const pid = Number((await run('pgrep', ['-P', String(wrapper.pid)])).stdout.trim());
  t.ok(pid > 0, 'found the daemon');
  t.teardown(async () => {
    if (await alive(pid)) process.kill(pid, 'SIGKILL');
  });
  wrapper.kill('SIGKILL');
  // Long enough for the daemon to notice before it mounts (it polls four times a second).
  await sleep(1500);
  await fsp.writeFile(gate, '');
  await gone(t, dir, pid);
});
