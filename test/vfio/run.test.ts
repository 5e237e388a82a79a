// `mdevfs run`: the VFIO device files at /dev/vfio inside the run's private
// namespace (an overlay over /dev), both profiles, libvirt's nodeDeviceDestroy
// pattern (the group held open while the real mdevctl stops the device), and
// nothing of it on the host's /dev afterwards.
import t from 'tap';
import { existsSync, promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PYTHON } from '../helpers/util.js';
import { runSteps, unmountLeftovers, type Step } from '../run/helpers.js';

t.teardown(unmountLeftovers);

const U = '83b8f4f2-509f-382f-3c1e-e6bfe0fa1001';
const CREATE = `echo ${U} > /sys/class/mdev_bus/mtty/mdev_supported_types/mtty-2/create`;
const GROUP = `basename "$(readlink /sys/bus/mdev/devices/${U}/iommu_group)"`;
const PREAD = `${PYTHON} -c 'import os,sys; fd = os.open(sys.argv[1], os.O_RDWR); print(os.pread(fd, 12, 7 << 40).hex())'`;
// libvirt's nodeDeviceDestroy: open /dev/vfio/<N> (retried while an earlier close is still
// reaching the daemon: the group allows one open), keep it open, run `mdevctl stop`, and
// report its status and whether the device is still there.
const DESTROY = `${PYTHON} -c '
import errno, os, subprocess, sys, time
for i in range(40):
    try:
        fd = os.open(sys.argv[1], os.O_RDWR)
        break
    except OSError as e:
        if e.errno != errno.EBUSY: raise
        time.sleep(0.05)
r = subprocess.run(["mdevctl", "stop", "-u", sys.argv[2]], timeout=20)
print(r.returncode, os.path.exists("/sys/bus/mdev/devices/" + sys.argv[2]))
os.close(fd)'`;

/** The host's mounts at or under /dev (mount ids included: a new mount there would show). */
async function hostDevMounts(): Promise<string[]> {
  const text = await fsp.readFile('/proc/self/mountinfo', 'utf8');
  return text.split('\n').filter(l => {
    const mp = l.split(' ')[4] ?? '';
    return mp === '/dev' || mp.startsWith('/dev/');
  });
}

const steps: Step[] = [
  { argv: ['ls', '-A', '/dev/vfio'] },
  { sh: CREATE },
  { sh: `N=$(${GROUP}); ls /dev/vfio; stat -c '%a %s %U' /dev/vfio/$N; ${PREAD} /dev/vfio/$N` },
  { argv: ['cat', '/proc/self/mountinfo'] },
  { sh: 'echo ok > /dev/null && test -c /dev/null && echo null-ok' },
  { argv: ['ls', '/sys/bus/mdev/drivers'] },
  { sh: `N=$(${GROUP}); ${DESTROY} /dev/vfio/$N ${U}; ls /dev/vfio` },
];

for (const profile of ['modern', 'legacy'] as const) {
  t.test(`mdevfs run --profile ${profile}: /dev/vfio/<N> inside, nothing on the host`, async t => {
    const hostHadVfio = existsSync('/dev/vfio');
    const hostDev = await hostDevMounts();
    const tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'mdevfs-uevents-'));
    t.teardown(() => fsp.rm(tmp, { recursive: true, force: true }));
    const ue = path.join(tmp, 'uevents.jsonl');
    const { results: r, run } = await runSteps(t, steps, ['--profile', profile, '--uevents', ue]);
    t.equal(run.stderr, '', 'nothing on stderr');
    t.same(
      r.map(x => x.code),
      [0, 0, 0, 0, 0, 0, 0],
      JSON.stringify(r.map(x => x.err)),
    );
    t.equal(r[0]!.out, '', 'an empty /dev/vfio before any device');
    t.equal(r[2]!.out, '0\n600 0 root\n484353320100000210020007\n', "group 0: mtty's vendor/device ids, command, status, revision, class");
    const info = r[3]!.out.split('\n');
    const at = (mp: string) => info.filter(l => l.split(' ')[4] === mp).map(l => l.split(' - ')[1]?.split(' ')[0]);
    t.equal(at('/dev').at(-1), 'overlay', '/dev is an overlay in the run');
    t.equal(at('/dev/vfio').at(-1), 'fuse.mdevfs', '/dev/vfio is the device files');
    t.equal(at('/dev/pts').at(-1), 'devpts', "/dev/pts is still the host's devpts");
    t.equal(r[4]!.out, 'null-ok\n', 'host devices work through the overlay');
    t.equal(r[5]!.out, profile === 'legacy' ? 'vfio_mdev\n' : 'mbochs\nmdpy\nmtty\n');
    t.equal(r[6]!.out, '0 False\n', 'with /dev/vfio/<N> held open, mdevctl stop succeeds and the device is gone');
    const evs = (await fsp.readFile(ue, 'utf8'))
      .split('\n')
      .filter(Boolean)
      .map(l => JSON.parse(l) as { ACTION: string });
    t.same(
      [...new Set(evs.map(e => e.ACTION))].sort(),
      profile === 'legacy' ? ['add', 'remove'] : ['add', 'bind', 'change', 'remove', 'unbind'],
      '--uevents works in a run',
    );
    t.equal(existsSync('/dev/vfio'), hostHadVfio, "the host's /dev/vfio is as it was");
    t.same(await hostDevMounts(), hostDev, "the host's /dev mounts are as they were");
  });
}
