// `mdevfs run`: what the command sees (/sys is the tree, /etc/mdevctl.d a
// scratch tmpfs), exit statuses, options, and the one-line failures.
import t, { type Test } from 'tap';
import { promises as fsp, readdirSync } from 'node:fs';
import path from 'node:path';
import { FIXTURES, REPO, run } from '../helpers/daemon.js';
import type { RunOptions } from '../../src/run/options.js';
import { planMounts } from '../../src/run/mounts.js';
import { hostMdevfsMounts, mdevfsRun, runSteps, snapshot, startGroup, unmountLeftovers } from './helpers.js';

t.teardown(unmountLeftovers);

/** Fields of the mountinfo line for `mp` (the last one: the top of the stack). */
function mountAt(mountinfo: string, mp: string): { fstype: string; source: string } | undefined {
  let found;
  for (const l of mountinfo.split('\n')) {
    const [pre, post] = l.split(' - ');
    if (!pre || !post || pre.split(' ')[4] !== mp) continue;
    const [fstype = '', source = ''] = post.split(' ');
    found = { fstype, source };
  }
  return found;
}

t.test("inside: the tree is /sys (over the host's), /etc/mdevctl.d is a scratch tmpfs; the host sees none of it", async t => {
  const hostEtc = await snapshot('/etc/mdevctl.d');
  const hostSysMount = mountAt(await fsp.readFile('/proc/self/mountinfo', 'utf8'), '/sys');
  const { results: r } = await runSteps(t, [
    { argv: ['cat', '/proc/self/mountinfo'] },
    { argv: ['ls', '/sys'] },
    { sh: 'cd /etc/mdevctl.d && find . | sort' },
    { sh: 'mkdir /etc/mdevctl.d/mdpy && echo "{}" > /etc/mdevctl.d/mdpy/x && cat /etc/mdevctl.d/mdpy/x' },
    { argv: ['readlink', '/sys/class/mdev_bus/mdpy'] },
    { argv: ['cat', '/sys/class/mdev_bus/mdpy/mdev_supported_types/mdpy-vga/available_instances'] },
    { argv: ['readlink', '/proc/self/ns/pid'] },
    { sh: 'read self _ </proc/self/stat; echo $$ $self $(tr "\\0" " " </proc/$$/cmdline)' },
  ]);
  const sys = mountAt(r[0]!.out, '/sys');
  t.same(sys, { fstype: 'fuse.mdevfs', source: 'mdevfs' }, '/sys is the FUSE tree');
  t.same(mountAt(r[0]!.out, '/etc/mdevctl.d'), { fstype: 'tmpfs', source: 'mdevfs-run' }, 'scratch /etc/mdevctl.d');
  const top = new Set([...readdirSync('/sys'), 'bus', 'class', 'devices', 'kernel']);
  t.equal(r[1]!.out, [...top].sort().join('\n') + '\n', "the host's top level merged with the tree's (docs/overlay.md)");
  t.equal(r[2]!.out, '.\n./scripts.d\n./scripts.d/callouts\n./scripts.d/notifiers\n', 'what mdevctl 1.2.0 requires, nothing else');
  t.equal(r[3]!.code, 0, 'writable');
  t.equal(r[4]!.out, '../../devices/virtual/mdpy/mdpy\n', 'the sample drivers by default');
  t.equal(r[5]!.out, '4\n');
  t.not(r[6]!.out.trim(), await fsp.readlink('/proc/self/ns/pid'), 'a pid namespace of its own');
  const [pid, statPid, ...argv] = r[7]!.out.trim().split(' ');
  t.ok(Number(pid) < 100, `a small pid (${pid}): the command's own pid namespace`);
  t.equal(statPid, pid, 'and its own /proc: /proc/self and getpid() agree');
  t.same(argv.slice(0, 2), ['/bin/sh', '-c'], '/proc/<pid> is this very process');

  t.equal(await snapshot('/etc/mdevctl.d'), hostEtc, "the host's /etc/mdevctl.d is untouched");
  t.same(mountAt(await fsp.readFile('/proc/self/mountinfo', 'utf8'), '/sys'), hostSysMount, "the host's /sys is still its own");
  t.same(await hostMdevfsMounts(), [], 'no mount of the run is visible on the host');
});

t.test("exit status: the command's, 128+N for a signal, 127 for a missing command", async t => {
  const [three, term, missing, ok] = await Promise.all([
    mdevfsRun(t, ['--', 'sh', '-c', 'exit 3']),
    mdevfsRun(t, ['--', 'sh', '-c', 'kill -TERM $$']),
    mdevfsRun(t, ['--', 'no-such-command-mdevfs', 'x']),
    mdevfsRun(t, ['--', 'sh', '-c', 'echo out; echo err >&2']),
  ]);
  t.equal(three.code, 3, 'exit 3 → 3');
  t.equal(three.stderr, '', 'nothing of its own on stderr');
  t.equal(term.code, 128 + 15, 'SIGTERM → 143');
  t.equal(missing.code, 127);
  t.equal(missing.stderr, 'mdevfs: no-such-command-mdevfs: command not found\n');
  t.equal(ok.code, 0);
  t.equal(ok.stdout, 'out\n', "stdout is the command's alone");
  t.equal(ok.stderr, 'err\n', "stderr is the command's alone");
});

t.test("stdin is the command's; options after the command name are the command's", async t => {
  const [cat, noDashes] = await Promise.all([
    mdevfsRun(t, ['--', 'cat'], { input: 'hello\n' }),
    mdevfsRun(t, ['mdevctl', 'types', '-p', 'mtty', '--dumpjson']),
  ]);
  t.equal(cat.code, 0);
  t.equal(cat.stdout, 'hello\n');
  t.equal(noDashes.code, 0, noDashes.stderr);
  t.same(Object.keys((JSON.parse(noDashes.stdout) as Array<Record<string, unknown>>)[0]!), ['mtty'], '-p went to mdevctl, not to run');
});

t.test("--keep-etc shows the host's /etc/mdevctl.d", async t => {
  const host = (await fsp.readdir('/etc/mdevctl.d').catch(() => [] as string[])).sort();
  const { results: r } = await runSteps(t, [{ argv: ['cat', '/proc/self/mountinfo'] }, { sh: 'ls -A /etc/mdevctl.d' }], ['--keep-etc']);
  t.not(mountAt(r[0]!.out, '/etc/mdevctl.d')?.source, 'mdevfs-run', 'no scratch tmpfs');
  t.same(r[1]!.out.split('\n').filter(Boolean), host);
});

t.test('--driver, --config and --profile', async t => {
  const [config, legacy, nvidia] = await Promise.all([
    mdevfsRun(t, ['--config', path.join(FIXTURES, 'config/mtty-fixed.json'), '--', 'ls', '/sys/class/mdev_bus']),
    mdevfsRun(t, ['--profile', 'legacy', '--', 'ls', '/sys/bus/mdev/drivers']),
    mdevfsRun(t, [
      '--driver',
      'examples/nvidia-vgpu.ts',
      '--config',
      path.join(FIXTURES, 'config/mtty-fixed.json'),
      '--',
      'ls',
      '/sys/class/mdev_bus',
    ]),
  ]);
  t.equal(config.stdout, 'mtty\n', "--config alone: only the config's parents (no samples)");
  t.equal(legacy.stdout, 'vfio_mdev\n', 'legacy: every device is bound to vfio_mdev');
  t.equal(nvidia.stdout, '0000:3b:00.0\n0000:d8:00.0\nmtty\n', 'drivers and configs together');
});

/** Exactly one line on stderr, "mdevfs: ...", no stack trace. */
function oneLine(t: Test, stderr: string, pattern: RegExp): void {
  const lines = stderr.trimEnd().split('\n');
  t.equal(lines.length, 1, `one line: ${JSON.stringify(stderr)}`);
  t.match(lines[0], /^mdevfs: /);
  t.match(lines[0], pattern);
}

t.test('its own failures: one line, exit 125, the command never runs', async t => {
  const [badDriver, initFails, badConfig] = await Promise.all([
    mdevfsRun(t, ['--driver', './no/such/driver.ts', '--', 'sh', '-c', 'echo ran']),
    mdevfsRun(t, ['--driver', path.join(FIXTURES, 'init-fails.ts'), '--', 'sh', '-c', 'echo ran']),
    mdevfsRun(t, ['--config', '/no/such/config.json', '--', 'sh', '-c', 'echo ran']),
  ]);
  for (const [r, re] of [
    [badDriver, /cannot load driver \.\/no\/such\/driver\.ts: no such file/],
    [initFails, /driver init-fails failed to initialise: no such hardware \(ENODEV\)/],
    [badConfig, /cannot read config file .*no such file/],
  ] as const) {
    t.equal(r.code, 125, re.source);
    t.equal(r.stdout, '', 'the command did not run');
    oneLine(t, r.stderr, re);
  }
});

t.test('without root: one line saying what it needs', async t => {
  // env -u: without the NODE_OPTIONS tap's processinfo adds to every child (its exit hook would write tap's files as nobody).
  const nobody = ['env', '-u', 'NODE_OPTIONS', 'setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'];
  for (const start of [[process.execPath, 'bin/mdevfs'], ['bin/mdevfs']]) {
    const r = await run(nobody[0]!, [...nobody.slice(1), ...start, 'run', '--', 'true']);
    t.equal(r.code, 125, start.join(' '));
    oneLine(t, r.stderr, /run needs root: it mounts the tree over \/sys in a private mount namespace/);
  }
});

t.test("MDEVFS_RUN_NS alone does not make a process the run's daemon: nothing is mounted outside a private namespace", async t => {
  const hostSys = mountAt(await fsp.readFile('/proc/self/mountinfo', 'utf8'), '/sys');
  const env = { ...process.env, MDEVFS_RUN_NS: '1' };
  const [noFds, sameNs] = await Promise.all([
    run(process.execPath, ['bin/mdevfs', 'run', '--', 'sh', '-c', 'echo ran'], { env }),
    // The caller's namespaces passed, but this is still the caller's mount namespace.
    run(
      'sh',
      [
        '-c',
        'exec "$@" 8</proc/self/ns/mnt 9</proc/self/ns/net',
        'sh',
        process.execPath,
        'bin/mdevfs',
        'run',
        '--',
        'sh',
        '-c',
        'echo ran',
      ],
      {
        env,
      },
    ),
  ]);
  for (const r of [noFds, sameNs]) {
    t.equal(r.code, 125);
    t.equal(r.stdout, '', 'the command did not run');
    oneLine(t, r.stderr, /not a private mount namespace started by mdevfs run; not mounting anything/);
  }
  t.same(mountAt(await fsp.readFile('/proc/self/mountinfo', 'utf8'), '/sys'), hostSys, "the host's /sys is still its own");
  t.same(await hostMdevfsMounts(), []);
});

t.test('usage errors come from commander', async t => {
  const r = await run(process.execPath, ['bin/mdevfs', 'run']);
  t.equal(r.code, 1);
  t.match(r.stderr, /missing required argument 'command'/);
  const help = await run(process.execPath, ['bin/mdevfs', 'run', '--help']);
  t.equal(help.code, 0);
  t.match(help.stdout, /Usage: mdevfs run \[options\] -- <command> \[args\.\.\.\]/);
  t.match(help.stdout, /--keep-etc/);
});

t.test('extra mounts (the seam for later ones, e.g. /dev/vfio): after /sys and /etc, private to the run', async t => {
  const extra = { what: 'a test tmpfs', kind: 'tmpfs' as const, target: '/srv', options: 'mode=0700', dirs: ['vfio'] };
  t.same(
    planMounts({ treeDir: '/x', keepEtc: false, extra: [extra] }).map(m => m.target),
    ['/sys', '/etc/mdevctl.d', '/srv'],
    'the order',
  );
  t.same(
    planMounts({ treeDir: '/x', keepEtc: true }).map(m => m.target),
    ['/sys'],
    '--keep-etc',
  );

  // The daemon in namespaces as bin/mdevfs makes them, with one extra mount.
  const before = await snapshot('/srv');
  const opts: RunOptions = {
    driver: [],
    config: [],
    profile: 'modern',
    verbose: false,
    callTimeout: 5000,
    allowOther: false,
    keepEtc: false,
    mounts: [extra],
    command: [
      'sh',
      '-c',
      'ls -A /srv; awk \'$5 == "/srv" { for (i = 7; i <= NF; i++) if ($i == "-") print $5, $(i + 1), $(i + 2) }\' /proc/self/mountinfo',
    ],
  };
  const daemon = `const { runAsDaemon } = await import(${JSON.stringify(path.join(REPO, 'dist/run/daemon-main.js'))}); await runAsDaemon(JSON.parse(process.env.OPTS));`;
  const r = await startGroup(
    t,
    [
      'sh',
      '-c',
      'exec unshare --mount --propagation private -- "$@" 8</proc/self/ns/mnt 9</proc/self/ns/net',
      'sh',
      process.execPath,
      '--input-type=module',
      '-e',
      daemon,
    ],
    { env: { ...process.env, OPTS: JSON.stringify(opts), MDEVFS_RUN_NS: '1' } },
  ).done;
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout, 'vfio\n/srv tmpfs mdevfs-run\n');
  t.equal(await snapshot('/srv'), before, "the host's /srv is untouched");
});
