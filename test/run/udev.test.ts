// udev inside `mdevfs run`: every uevent reaches systemd's libudev (udevadm
// monitor) and a raw netlink listener in udevd's format, from the run's own
// network namespace; /run/udev/control and SYSTEMD_DEVICE_VERIFY_SYSFS=0 are
// there; nothing reaches the host's udev group; --host-network and --no-udev.
import t, { type Test } from 'tap';
import { execFile } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { BIN, REPO } from '../helpers/daemon.js';
import { PYTHON, uuid } from '../helpers/util.js';
import { mdevfsRun, runSteps, startGroup, unmountLeftovers } from './helpers.js';

t.teardown(unmountLeftovers);

const LISTEN = path.join(REPO, 'test/udev/uevent_listen.py');
const TYPE = '/sys/class/mdev_bus/mtty/mdev_supported_types/mtty-2';
const U = uuid(0x51);
const DEV = `/devices/virtual/mtty/mtty/${U}`;

interface Msg {
  format: 'udev' | 'kernel';
  magic?: number;
  header_size?: number;
  properties_off?: number;
  nul_terminated?: boolean;
  props: Array<[string, string]>;
  ms: number;
  port: number;
  uid?: number;
  pid?: number;
}
interface ActionRec {
  start: number;
  end: number;
  ok?: boolean;
  code?: number;
  out?: string;
  messages: Msg[];
}
const prop = (m: Msg, k: string) => m.props.find(([key]) => key === k)?.[1];
/** A message about the run's devices (any udev-format message is the run's). */
// Ours by content: a host udevd rebroadcasts events of its own (the bdi
// devices of our FUSE mounts among them) in the same format.
const ours = (m: Msg) => m.props.some(([k, v]) => (k === 'DEVPATH' || k === 'SUBSYSTEM') && /mtty|mdpy|mbochs|vfio|\/mdev/.test(v));
const summary = (m: Msg) => `${prop(m, 'ACTION')} ${prop(m, 'SUBSYSTEM')} ${prop(m, 'DEVPATH')}`;

t.test('systemd libudev (udevadm monitor --udev, with BPF subsystem filters) hears every uevent in order', async t => {
  const mon = '/run/mdevfs-test-monitor.out';
  const { results: r } = await runSteps(t, [
    {
      sh: `udevadm monitor --udev --property --subsystem-match=mdev --subsystem-match=vfio --subsystem-match=vfio-dev >${mon} 2>&1 </dev/null & echo $! > ${mon}.pid
           i=0; until grep -q '^UDEV - ' ${mon} 2>/dev/null || [ $i -ge 100 ]; do sleep 0.05; i=$((i+1)); done; sleep 0.2`,
    },
    { sh: `echo ${U} > ${TYPE}/create` },
    { sh: `echo 1 > /sys/bus/mdev/devices/${U}/remove` },
    {
      sh: `i=0; until grep -q '^UDEV .* remove .*${U} (mdev)' ${mon} || [ $i -ge 100 ]; do sleep 0.05; i=$((i+1)); done; kill $(cat ${mon}.pid); cat ${mon}`,
    },
  ]);
  t.equal(r[1]!.code, 0, r[1]!.err);
  const out = r[3]!.out;
  const events = [...out.matchAll(/^UDEV +\[[\d.]+\] (\w+) +(\S+) \((\S+)\)$/gm)].map(m => `${m[1]} ${m[3]} ${m[2]}`);
  t.same(
    events,
    [
      `add mdev ${DEV}`,
      'add vfio /devices/virtual/vfio/0',
      `add vfio-dev ${DEV}/vfio-dev/vfio0`,
      `bind mdev ${DEV}`,
      `remove vfio-dev ${DEV}/vfio-dev/vfio0`,
      'remove vfio /devices/virtual/vfio/0',
      `unbind mdev ${DEV}`,
      `remove mdev ${DEV}`,
    ],
    'every event of the three subsystems, in the kernel order; no parent change event (filtered out by hash)',
  );
  t.match(out, /\nACTION=bind\nDEVPATH=[^\n]+\nSUBSYSTEM=mdev\nDRIVER=mtty\nSEQNUM=\d+\nUSEC_INITIALIZED=\d+\n/, 'bind: DRIVER');
  t.match(out, /DEVNAME=\/dev\/vfio\/0\n/, 'DEVNAME with its /dev/ prefix');
});

t.test('a raw listener: udevd format, uid 0 credentials, kernel order, and the latency', async t => {
  const actions = [
    { write: `${TYPE}/create`, data: U },
    { write: `/sys/bus/mdev/devices/${U}/remove`, data: '1' },
  ];
  const r = await mdevfsRun(t, ['--', PYTHON, LISTEN, '3', JSON.stringify(actions)]);
  t.equal(r.code, 0, r.stderr);
  const recs = JSON.parse(r.stdout) as ActionRec[];
  // The kernel group carries the host's own kernel uevents (a FUSE mount's
  // bdi device, say): the kernel sends those to every network namespace.
  // None of them may be ours; our messages are all on the udev group.
  const everything = recs.flatMap(a => a.messages);
  t.same(everything.filter(m => m.format === 'kernel' && ours(m)).map(summary), [], 'nothing of ours on the kernel group');
  const udevOnly = (a: ActionRec) => a.messages.filter(m => m.format === 'udev');
  const [create, remove] = recs;
  t.equal(create!.ok, true);
  const created = udevOnly(create!);
  t.same(created.map(summary), [
    `add mdev ${DEV}`,
    'add vfio /devices/virtual/vfio/0',
    `add vfio-dev ${DEV}/vfio-dev/vfio0`,
    `bind mdev ${DEV}`,
  ]);
  t.same(udevOnly(remove!).map(summary), [
    `remove vfio-dev ${DEV}/vfio-dev/vfio0`,
    'remove vfio /devices/virtual/vfio/0',
    `unbind mdev ${DEV}`,
    `remove mdev ${DEV}`,
  ]);
  const all = [...created, ...udevOnly(remove!)];
  for (const m of all) {
    t.equal(m.magic, 0xfeedcafe, `${summary(m)}: udevd's header`);
    t.equal(m.header_size, 40);
    t.equal(m.properties_off, 40);
    t.ok(m.nul_terminated);
    t.equal(m.uid, 0, 'credentials: uid 0');
    t.ok((m.pid ?? 0) > 1, "sent by the run's daemon: its pid, outside the command's pid namespace (as udevd's is outside a container's)");
    t.not(m.port, 0, 'from a user space port, as udevd');
    t.same(
      m.props.slice(0, 3).map(([k]) => k),
      ['ACTION', 'DEVPATH', 'SUBSYSTEM'],
    );
    // A rule-less udevd stamps every event but a remove (src/udev/broadcast.ts).
    if (prop(m, 'ACTION') === 'remove') {
      t.equal(m.props.at(-1)![0], 'SEQNUM', `${summary(m)}: SEQNUM last`);
      t.equal(prop(m, 'USEC_INITIALIZED'), undefined, `${summary(m)}: no USEC_INITIALIZED`);
    } else {
      t.same(
        m.props.slice(-2).map(([k]) => k),
        ['SEQNUM', 'USEC_INITIALIZED'],
      );
    }
  }
  const seq = all.map(m => Number(prop(m, 'SEQNUM')));
  t.same(
    seq,
    [...seq].sort((a, b) => a - b),
    'SEQNUM ascending',
  );
  t.ok(
    BigInt(prop(all[3]!, 'USEC_INITIALIZED')!) > BigInt(prop(all[0]!, 'USEC_INITIALIZED')!),
    'bind is stamped anew, not with the add time',
  );
  // The latency, reported (no timing assertion: see test/README.md).
  const firstAfterStart = created[0]!.ms - create!.start;
  const lastAfterReturn = created[3]!.ms - create!.end;
  t.ok(created[0]!.ms >= create!.start, 'the add arrives after the write started');
  t.comment(
    `create write took ${(create!.end - create!.start).toFixed(2)} ms; add received ${firstAfterStart.toFixed(2)} ms after the write started, bind ${lastAfterReturn.toFixed(2)} ms after it returned`,
  );
});

/** Run a host-side listener (kernel and udev groups) around `argv`. */
async function hostListen(t: Test, runArgs: string[], cmd: string): Promise<ActionRec> {
  const sh = [BIN, 'run', ...runArgs, '--', 'sh', '-c', cmd].map(a => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const r = await startGroup(t, [PYTHON, LISTEN, '3', JSON.stringify([{ sh }])], { timeoutMs: 90_000 }).done;
  t.equal(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout) as ActionRec[])[0]!;
}

const CREATE_REMOVE = `echo ${U} > ${TYPE}/create && echo 1 > /sys/bus/mdev/devices/${U}/remove`;

t.test("nothing reaches the host's listeners: default, and --host-network", async t => {
  const runBefore = (await fsp.readdir('/run')).sort();
  for (const args of [[], ['--host-network']]) {
    const rec = await hostListen(t, args, CREATE_REMOVE);
    t.equal(rec.code, 0, `mdevfs run ${args.join(' ')}: ${rec.out ?? ''}`);
    t.same(rec.messages.filter(ours).map(summary), [], `mdevfs run ${args.join(' ')}: no event of the run on the host's groups`);
  }
  t.same((await fsp.readdir('/run')).sort(), runBefore, "the host's /run: no entry added or removed");
});

t.test('the namespace: lo only, and up; /run/udev/control; SYSTEMD_DEVICE_VERIFY_SYSFS=0; host /run entries still there', async t => {
  const hostNet = await fsp.readlink('/proc/self/ns/net');
  const hostRun = (await fsp.readdir('/run')).filter(e => e !== 'udev').sort();
  const flags = `${PYTHON} -c "import fcntl,socket,struct; s=socket.socket(); print(struct.unpack('H', fcntl.ioctl(s, 0x8913, struct.pack('16sH', b'lo', 0))[16:18])[0] & 1)"`;
  const echo = `${PYTHON} -c "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); s.listen(1); c=socket.create_connection(s.getsockname(), timeout=5); a,_=s.accept(); c.send(b'ok'); print(a.recv(2).decode())"`;
  const { results: r } = await runSteps(t, [
    { argv: ['readlink', '/proc/self/ns/net'] },
    { argv: [PYTHON, '-c', 'import socket; print([n for _, n in socket.if_nameindex()])'] },
    { sh: flags },
    { sh: echo },
    { sh: 'echo "$SYSTEMD_DEVICE_VERIFY_SYSFS"; stat -c %F /run/udev/control; ls -A /run/udev' },
    { sh: 'ls -A /run' },
    { sh: `echo ${U} > ${TYPE}/create && udevadm info /sys/bus/mdev/devices/${U}` },
    {
      sh: `echo "c$(cat /sys/devices/virtual/vfio/0/dev) c$(cat /sys${DEV}/vfio-dev/vfio0/dev)"; cd /run/udev/data && stat -c '%n %a %s' * | sort`,
    },
    { sh: `echo 1 > /sys/bus/mdev/devices/${U}/remove && ls -A /run/udev/data` },
  ]);
  t.not(r[0]!.out.trim(), hostNet, 'a network namespace of its own');
  t.equal(r[1]!.out, "['lo']\n", 'only lo');
  t.equal(r[2]!.out, '1\n', 'lo is up');
  t.equal(r[3]!.out, 'ok\n', 'loopback TCP works');
  t.equal(r[4]!.out, '0\nregular empty file\ncontrol\ndata\n');
  t.same(
    r[5]!.out
      .split('\n')
      .filter(e => e && e !== 'udev')
      .sort(),
    hostRun,
    "the host's /run entries are all there",
  );
  t.equal(r[6]!.code, 0, r[6]!.err);
  t.match(r[6]!.out, new RegExp(`^P: ${DEV}\\n`), 'a late reader finds the device by its syspath (sd-device accepts the FUSE /sys)');
  t.match(r[6]!.out, /E: SUBSYSTEM=mdev\nE: DRIVER=mtty\n/);
  const [group, cdev] = r[7]!.out.split('\n')[0]!.split(' ');
  t.equal(
    r[7]!.out,
    `${group} ${cdev}\n${[`${cdev} 644 0`, `${group} 644 0`].sort().join('\n')}\n`,
    "udev database: an empty c<major>:<minor> entry per char device (none for the mdev), as a rule-less udevd's",
  );
  t.equal(r[8]!.out, '', 'entries removed with their devices');
});

t.test('--host-network keeps the host network and the udev files; --no-udev has none of it', async t => {
  const hostNet = await fsp.readlink('/proc/self/ns/net');
  const probe =
    'readlink /proc/self/ns/net; echo "verify=${SYSTEMD_DEVICE_VERIFY_SYSFS-unset}"; test -e /run/udev/control && echo control || echo no-control';
  const host = await mdevfsRun(t, ['--host-network', '--', 'sh', '-c', probe]);
  t.equal(host.code, 0, host.stderr);
  t.equal(host.stdout, `${hostNet}\nverify=0\ncontrol\n`);
  const hostHadControl = await fsp
    .access('/run/udev/control')
    .then(() => true)
    .catch(() => false);
  const none = await mdevfsRun(t, ['--no-udev', '--', 'sh', '-c', probe]);
  t.equal(none.code, 0, none.stderr);
  t.equal(none.stdout, `${hostNet}\nverify=unset\n${hostHadControl ? 'control' : 'no-control'}\n`);
});

t.test("the run's last uevents never reach the host's /run/udev/data", async t => {
  // A private stand-in for the host's /run, with udev database entries whose
  // names the run's VFIO char devices also use; after the run, all are still there.
  const script = `set -e
mount -t tmpfs hostrun /run
mkdir -p /run/udev/data
touch /run/udev/data/c511:0 /run/udev/data/c510:0 /run/udev/data/c999:9
'${BIN}' run -- sh -c 'echo ${U} > ${TYPE}/create'
ls /run/udev/data`;
  const out = await new Promise<string>((resolve, reject) =>
    execFile('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script], { timeout: 60_000 }, (err, stdout, stderr) =>
      err ? reject(new Error(`${err.message}: ${stderr}`)) : resolve(stdout),
    ),
  );
  t.same(out.split('\n').filter(Boolean), ['c510:0', 'c511:0', 'c999:9'], 'the host-side entries are untouched');
});
