// The control plane inside `mdevfs run`: the run hands its command the
// socket in MDEVFS_CTL, so `mdevfs ctl` (and a Python client, straight over
// the socket) drive the run's daemon while Debian's mdevctl looks on.
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { BIN, type Teardownable } from '../helpers/daemon.js';
import { PYTHON } from '../helpers/util.js';
import { REPO, mdevctl, mdevfsRun, parseSteps, stepsCommand, type Step } from './helpers.js';

const U = '83b8f4f2-509f-382f-3c1e-e6bfe0fa4001';
const CTL = `${process.execPath} ${BIN} ctl`;

async function withTmp(t: Teardownable): Promise<NodeJS.ProcessEnv> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'mdevfs-ctl-run-'));
  t.teardown(() => fsp.rm(dir, { recursive: true, force: true }));
  return { ...process.env, TMPDIR: dir };
}

/** The steps in one `mdevfs run`, with TMPDIR (where the socket's directory goes) from `env`. */
async function steps(t: Teardownable, env: NodeJS.ProcessEnv, list: Step[]) {
  return parseSteps(await mdevfsRun(t, ['--', ...stepsCommand(list)], { env, timeoutMs: 120_000 }));
}

t.test('mdevctl while a parent is unplugged and plugged back, faults and capacity', async t => {
  const env = await withTmp(t);
  const ev = path.join(env.TMPDIR!, 'events');
  const r = await steps(t, env, [
    { sh: 'test -S "$MDEVFS_CTL" && echo socket' },
    mdevctl('start', '-u', U, '-p', 'mtty', '-t', 'mtty-2'),
    mdevctl('list'),
    {
      // Subscribe, wait for the subscription, unplug, then read what came.
      sh: `${CTL} events --json --count 5 > ${ev} 2> ${ev}.err & until grep -q listening ${ev}.err; do sleep 0.05; done; ${CTL} unplug mtty && wait && cat ${ev}`,
      timeout: 30,
    },
    mdevctl('list'),
    mdevctl('types'),
    { sh: `${CTL} plug mtty` },
    { sh: 'mdevctl types | grep -c "^mtty$"' },
    { sh: `${CTL} fail create --errno EDQUOT --type mtty-2` },
    mdevctl('start', '-u', U, '-p', 'mtty', '-t', 'mtty-2'),
    { sh: 'ls /sys/bus/mdev/devices | wc -l' },
    { sh: `${CTL} set-available mtty-2 1 && mdevctl types | grep -A2 "^  mtty-2$"` },
    { sh: `${CTL} state` },
    // delay: the create waits, then mdevctl's start goes through; clear-faults drops a pending one.
    {
      sh: `${CTL} set-available mtty-2 12 && ${CTL} delay create 200 --type mtty-2 && mdevctl start -u ${U} -p mtty -t mtty-2 && ${CTL} state`,
    },
    { sh: `${CTL} fail remove --errno EBUSY && ${CTL} state | grep -c ^fault; ${CTL} clear-faults && ${CTL} state | grep -c ^fault` },
  ]);
  t.equal(r[0]!.out, 'socket\n', 'MDEVFS_CTL names the socket');
  t.equal(r[1]!.code, 0, r[1]!.err);
  t.match(r[2]!.out, new RegExp(`^${U} mtty mtty-2 manual$`, 'm'));
  t.equal(r[3]!.code, 0, r[3]!.err);
  const evs = r[3]!.out
    .trim()
    .split('\n')
    .map(l => JSON.parse(l) as Record<string, string>);
  t.same(
    evs.map(e => `${e.ACTION} ${e.DEVPATH}${e.MDEV_STATE ? ` ${e.MDEV_STATE}` : ''}`),
    [
      `remove /devices/virtual/mtty/mtty/${U}/vfio-dev/vfio0`,
      'remove /devices/virtual/vfio/0',
      `unbind /devices/virtual/mtty/mtty/${U}`,
      `remove /devices/virtual/mtty/mtty/${U}`,
      'change /devices/virtual/mtty/mtty unregistered',
    ],
    "the kernel's teardown: the device's events, then the parent's",
  );
  t.same([r[4]!.code, r[4]!.out.trim()], [0, ''], 'mdevctl lists nothing');
  t.equal(r[5]!.code, 0);
  t.notMatch(r[5]!.out, /^mtty$/m, 'mdevctl types: no mtty');
  t.match(r[5]!.out, /^mdpy$/m, 'the other parents stay');
  t.equal(r[7]!.out, '1\n', 'mtty is back');
  t.match(r[8]!.out, /^fault \d+: create type=mtty-2 errno=EDQUOT remaining=1$/m);
  t.not(r[9]!.code, 0, 'mdevctl start fails');
  t.equal(r[10]!.out, '0\n', 'nothing half-made');
  t.match(r[11]!.out, /Available instances: 1\n/);
  t.match(r[12]!.out, /^parent mtty live/m);
  t.notMatch(r[12]!.out, /^fault/m, 'the fault was used up');
  t.equal(r[13]!.code, 0, r[13]!.err);
  t.match(r[13]!.out, /^fault \d+: create type=mtty-2 delay=200ms remaining=1$/m, 'delay prints its fault');
  t.match(r[13]!.out, new RegExp(`^device ${U} mtty/mtty-2 active`, 'm'), 'the delayed create completed');
  t.notMatch(r[13]!.out.split('\n').slice(1).join('\n'), /^fault/m, 'and used the fault up');
  t.same(
    r[14]!.out.split('\n').filter(l => /^\d+$/.test(l)),
    ['1', '0'],
    'clear-faults drops the pending one',
  );
});

t.test('a Python test suite drives the socket directly', async t => {
  const env = await withTmp(t);
  const r = await steps(t, env, [{ argv: [PYTHON, path.join(REPO, 'test/run/ctl_client.py')], timeout: 60 }]);
  t.equal(r[0]!.code, 0, r[0]!.err);
  const o = JSON.parse(r[0]!.out) as Record<string, unknown>;
  t.match(o.ping, { ok: true, version: 1, profile: 'modern' });
  t.match(o.unknown, { ok: false, errno: 'EINVAL', message: /unknown op "frob"/ });
  t.match(o.empty, { ok: false, errno: 'EINVAL' });
  t.match(o.garbage, { ok: false, errno: 'EINVAL', message: /not JSON/ });
  t.match(o.fail, { ok: true, fault: { op: 'create', type: 'mtty-2', errno: 'EDQUOT', remaining: 1 } });
  t.equal(o.create_failed, 'EDQUOT');
  t.same(o.devices_after_failure, []);
  t.same(o.subscribed, { ok: true });
  t.equal(o.create, 'ok');
  t.same(o.unplug, { ok: true });
  const evs = (o.events as Array<[string, string, string | null]>).map(e => e.filter(x => x !== null).join(' '));
  const mtty = '/devices/virtual/mtty/mtty';
  const U2 = '83b8f4f2-509f-382f-3c1e-e6bfe0fa3002';
  t.equal(evs[0], `add ${mtty}/${U2}`, 'the create first');
  t.ok(evs.indexOf(`remove ${mtty}/${U2}`) > evs.indexOf(`bind ${mtty}/${U2} `.trim()), 'then its removal');
  t.equal(evs.at(-1), `change ${mtty} unregistered`, "then the parent's event");
  t.same(o.mdev_bus, ['mbochs', 'mdpy']);
  t.match(o.state, { parents: [{ name: 'mdpy' }, { name: 'mbochs' }, { name: 'mtty', state: 'unplugged' }], devices: [] });
  t.same(o.plug, { ok: true });
  t.equal(o.available, '12\n');
  t.same(o.set_available, { ok: true, available: 2 });
  t.equal(o.available_after, '2\n');
});

t.test('mdevfs run --scenario: the story plays while the command runs', async t => {
  const env = await withTmp(t);
  const file = path.join(env.TMPDIR!, 'story.json');
  await fsp.writeFile(file, JSON.stringify({ steps: [{ at: 200, op: 'unplug', parent: 'mtty' }] }));
  const r = parseSteps(
    await mdevfsRun(
      t,
      [
        '--scenario',
        file,
        '--',
        ...stepsCommand([
          { sh: 'until [ ! -e /sys/class/mdev_bus/mtty ]; do sleep 0.05; done; mdevctl types | grep -c "^mtty$"', timeout: 30 },
        ]),
      ],
      { env, timeoutMs: 120_000 },
    ),
  );
  // Without the scenario mtty never goes, and the step times out (124).
  t.same([r[0]!.code, r[0]!.out], [1, '0\n'], 'mtty goes, for mdevctl too');
});

t.test("README's worked example: unplug a parent while mdevctl lists it", async t => {
  const env = { ...(await withTmp(t)), MDEVFS: BIN };
  const r = await mdevfsRun(t, ['--', 'sh', path.join(REPO, 'test/clients/unplug-while-listing.sh')], { env, timeoutMs: 120_000 });
  t.equal(r.code, 0, r.stdout + r.stderr);
  t.match(r.stdout, new RegExp(`${U.replace(/4001$/, '0001')} mtty mtty-2 manual`), 'mdevctl starts the device again once mtty is back');
});
