// `mdevfs run` leaves nothing behind, however it ends: mdevfs run (the
// daemon) sent SIGTERM or SIGINT or SIGKILLed, `node bin/mdevfs run` (which
// starts the daemon as its child) SIGKILLed, a command that ignores SIGTERM.
// "Nothing" means: the command's process is gone, no process is left in the
// run's mount namespace (so the namespace and its mounts are gone), no mount
// of the run is visible on the host, nothing named mdevfs-run-* in the temp dir.
import t, { type Test } from 'tap';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BIN, REPO } from '../helpers/daemon.js';
import { PYTHON, waitFor } from '../helpers/util.js';
import {
  alive,
  hostMdevfsMounts,
  pidsInMountNs,
  runChain,
  startGroup,
  startRun,
  unmountLeftovers,
  type RunChain,
  type RunResult,
} from './helpers.js';

const AT_TERMINAL = path.join(REPO, 'test/run/at_terminal.py');

t.teardown(unmountLeftovers);

async function tmpLeftovers(): Promise<string[]> {
  return (await fsp.readdir(os.tmpdir())).filter(n => n.startsWith('mdevfs-run'));
}

async function nothingLeft(t: Test, chain: RunChain, tmpBefore: string[]): Promise<void> {
  t.notOk(await alive(chain.command), "the command's process is gone");
  t.notOk(await alive(chain.daemon), 'the daemon is gone');
  // These two go by the parent-death signal and the pid namespace's end, which may still be under way.
  const gone = (pid: number) => waitFor(async () => !(await alive(pid)) || undefined, 2000);
  t.ok(await gone(chain.unshare), 'unshare is gone');
  t.ok(await gone(chain.init), "the command's PID 1 is gone");
  t.same(
    await waitFor(async () => (await pidsInMountNs(chain.mntNs)).length === 0 || undefined, 2000),
    true,
    "no process left in the run's mount namespace: the namespace and its mounts are gone",
  );
  t.same(await hostMdevfsMounts(), [], 'no mount of the run on the host');
  t.same(await tmpLeftovers(), tmpBefore, 'nothing left in the temp dir');
}

function exitStatus(r: RunResult): number {
  return r.code ?? 128 + (os.constants.signals[r.signal!] ?? 0);
}

t.test('SIGKILL of mdevfs run (the daemon) in the middle of a run', async t => {
  const tmpBefore = await tmpLeftovers();
  const r = startRun(t, ['--', 'sleep', '1001']);
  const chain = await runChain(r.proc.pid!, '1001');
  t.equal(chain.daemon, r.proc.pid, 'mdevfs run is the daemon: one process, under the pid its caller started');
  t.equal(
    (await fsp.readFile(`/proc/${chain.init}/status`, 'utf8')).match(/^NSpid:\s+\d+\s+(\d+)$/m)?.[1],
    '1',
    "the command's parent is PID 1 in its pid namespace",
  );
  const t0 = Date.now();
  r.proc.kill('SIGKILL');
  const res = await r.done;
  t.equal(exitStatus(res), 128 + 9, 'status 137');
  t.ok(await waitFor(async () => !(await alive(chain.command)) || undefined, 5000), 'the command is gone');
  const ms = Date.now() - t0;
  t.ok(ms < 5000, `promptly (${ms} ms)`);
  t.equal(res.stderr, '', "not a word (unshare's complaint included)");
  await nothingLeft(t, chain, tmpBefore);
});

t.test('SIGTERM of mdevfs run: the command gets it, then a clean teardown', async t => {
  const tmpBefore = await tmpLeftovers();
  const r = startRun(t, ['--', 'sleep', '1002']);
  const chain = await runChain(r.proc.pid!, '1002');
  const t0 = Date.now();
  r.proc.kill('SIGTERM');
  const res = await r.done;
  const ms = Date.now() - t0;
  t.ok(ms < 5000, `exited promptly (${ms} ms)`);
  t.equal(exitStatus(res), 128 + 15, 'the command died of SIGTERM: 143');
  t.equal(res.stderr, '', 'a clean teardown says nothing');
  await nothingLeft(t, chain, tmpBefore);
});

t.test("SIGINT of mdevfs run: the command's own handling decides the status", async t => {
  const tmpBefore = await tmpLeftovers();
  // The command traps SIGINT and exits 7 (as a shell script with cleanup would).
  const script = 'trap "exit 7" INT; sleep 1003 & wait';
  const r = startRun(t, ['--', 'sh', '-c', script]);
  const chain = await runChain(r.proc.pid!, argv => argv[2] === script);
  r.proc.kill('SIGINT');
  const res = await r.done;
  t.equal(exitStatus(res), 7, "the command's own exit status");
  await nothingLeft(t, chain, tmpBefore);
});

t.test('a command that ignores SIGTERM is killed after the grace period', async t => {
  const tmpBefore = await tmpLeftovers();
  const r = startRun(t, ['--', 'sh', '-c', 'trap "" TERM; exec sleep 1004']);
  const chain = await runChain(r.proc.pid!, '1004');
  const t0 = Date.now();
  r.proc.kill('SIGTERM');
  const res = await r.done;
  const ms = Date.now() - t0;
  t.ok(ms >= 4500 && ms < 9000, `killed after ~5 s (${ms} ms)`);
  t.equal(exitStatus(res), 128 + 9);
  t.match(res.stderr, /^mdevfs: the command did not exit within 5 s of SIGTERM; killing it\n$/);
  await nothingLeft(t, chain, tmpBefore);
});

t.test('SIGKILL of `node bin/mdevfs run`: the parent-death signal takes the daemon and the rest down', async t => {
  const tmpBefore = await tmpLeftovers();
  const r = startRun(t, ['--', 'sleep', '1005'], { viaNode: true });
  const chain = await runChain(r.proc.pid!, '1005');
  t.not(chain.daemon, r.proc.pid, 'the daemon is a child');
  r.proc.kill('SIGKILL');
  await r.done;
  t.ok(await waitFor(async () => !(await alive(chain.command)) || undefined, 5000), 'the command is gone');
  await nothingLeft(t, chain, tmpBefore);
});

t.test('the command exits on its own: its status, and nothing left', async t => {
  const tmpBefore = await tmpLeftovers();
  const r = startRun(t, ['--', 'sh', '-c', 'sleep 1006 & exec sleep 0.5']);
  const res = await r.done;
  t.equal(exitStatus(res), 0);
  t.same(await hostMdevfsMounts(), []);
  t.same(await tmpLeftovers(), tmpBefore);
  // The background sleep was in the command's pid namespace: its PID 1's exit took it along.
  const left = (await fsp.readdir('/proc')).filter(n => /^\d+$/.test(n));
  const sleeps = [];
  for (const p of left) {
    const argv = (await fsp.readFile(`/proc/${p}/cmdline`, 'utf8').catch(() => '')).split('\0');
    if (argv[0]?.endsWith('sleep') && argv[1] === '1006') sleeps.push(p);
  }
  t.same(sleeps, [], "the command's background process did not survive the run");
});

t.test('Ctrl-C at a terminal reaches the command once (not again through mdevfs run)', async t => {
  // at_terminal.py gives the run a pty; a ^C typed on it is the terminal's SIGINT to the foreground group.
  const py =
    'import signal,time\nn=0\ndef h(s,f):\n  global n; n+=1\nsignal.signal(signal.SIGINT,h)\nprint("ready",flush=True)\n' +
    'end=time.time()+2.5\nwhile time.time()<end: time.sleep(0.05)\nprint("count=%d"%n,flush=True)';
  const res = await startGroup(t, [PYTHON, AT_TERMINAL, 'ready', '\\x03', '--', BIN, 'run', '--', PYTHON, '-c', py]).done;
  t.equal(res.code, 0, `at_terminal.py ran (stderr: ${JSON.stringify(res.stderr)})`);
  const term = JSON.parse(res.stdout) as { status: number; typed: boolean; output: string };
  t.ok(term.typed, 'the command got ready and ^C was typed');
  // The terminal's output (the command's and mdevfs run's, stdout and stderr) explains a failure.
  t.equal(term.status, 0, `the command's status through mdevfs run; terminal output: ${JSON.stringify(term.output)}`);
  t.match(term.output, /count=1\r?\n/, 'one SIGINT, not two');
});
