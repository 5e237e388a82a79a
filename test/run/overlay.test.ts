// `mdevfs run` merges the emulated tree over the host's real /sys
// (docs/overlay.md): the host's CPUs, nodes, network devices and DMI read as
// outside, the emulated parents and devices behave as before, every change to
// a host entry is EROFS and reaches nothing, and --bare gives the old tree.
import t from 'tap';
import { existsSync, promises as fsp, readdirSync, readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { PYTHON } from '../helpers/util.js';
import { NVIDIA, runSteps, unmountLeftovers, type Step } from './helpers.js';

t.teardown(unmountLeftovers);

const sorted = (names: string[]): string => [...names].sort().join('\n') + '\n';
const lines = (s: string): string[] => s.split('\n').filter(Boolean);
/** A python step printing the errno of `code` (an expression raising OSError), or 'ok'. */
const errnoOf = (code: string): Step => ({
  argv: [PYTHON, '-c', `import os, errno\ntry:\n    ${code}\n    print('ok')\nexcept OSError as e:\n    print(errno.errorcode[e.errno])`],
});

t.test("the host's CPUs, nodes, lo and DMI read as outside; the emulated tree is all there", async t => {
  const hasNode = existsSync('/sys/devices/system/node');
  const hasDmi = existsSync('/sys/devices/virtual/dmi/id/sys_vendor');
  const { results: r } = await runSteps(t, [
    { argv: ['nproc'] },
    { argv: ['cat', '/sys/devices/system/cpu/online'] },
    { argv: ['lscpu', '-p=CPU,CORE,SOCKET'] },
    { sh: hasNode ? 'ls /sys/devices/system/node' : 'true' },
    { argv: ['readlink', '/sys/class/net/lo'] },
    { argv: ['cat', '/sys/class/net/lo/address', '/sys/class/net/lo/mtu'] },
    { sh: hasDmi ? 'cat /sys/devices/virtual/dmi/id/sys_vendor' : 'true' },
    { argv: ['ls', '/sys'] },
    // The emulated part, as before: a sample parent, a device made and removed.
    { argv: ['readlink', '/sys/class/mdev_bus/mdpy'] },
    {
      sh: 'echo 83b8f4f2-509f-382f-3c1e-e6bfe0fa1001 > /sys/class/mdev_bus/mdpy/mdev_supported_types/mdpy-vga/create && ls /sys/bus/mdev/devices',
    },
    { sh: 'readlink /sys/bus/mdev/devices/83b8f4f2-509f-382f-3c1e-e6bfe0fa1001/iommu_group' },
    { sh: 'echo 1 > /sys/bus/mdev/devices/83b8f4f2-509f-382f-3c1e-e6bfe0fa1001/remove && ls /sys/bus/mdev/devices | wc -l' },
  ]);
  t.equal(r[0]!.out, execFileSync('nproc', { encoding: 'utf8' }), 'nproc agrees with the host');
  t.equal(r[1]!.out, readFileSync('/sys/devices/system/cpu/online', 'utf8'), 'cpu/online');
  t.equal(r[2]!.out, execFileSync('lscpu', ['-p=CPU,CORE,SOCKET'], { encoding: 'utf8' }), 'lscpu sees the same CPUs');
  t.ok(
    lines(r[2]!.out).some(l => /^\d/.test(l)),
    'lscpu lists CPUs at all',
  );
  if (hasNode) t.equal(r[3]!.out, sorted(readdirSync('/sys/devices/system/node')), 'NUMA nodes');
  t.equal(r[4]!.out, (await fsp.readlink('/sys/class/net/lo')) + '\n', 'class/net/lo links as on the host');
  t.equal(r[5]!.out, readFileSync('/sys/class/net/lo/address', 'utf8') + readFileSync('/sys/class/net/lo/mtu', 'utf8'));
  if (hasDmi) t.equal(r[6]!.out, readFileSync('/sys/devices/virtual/dmi/id/sys_vendor', 'utf8'), 'DMI');
  t.equal(r[7]!.out, sorted(readdirSync('/sys')), "the top level is the host's (bus, class, devices and kernel merged)");
  t.equal(r[8]!.out, '../../devices/virtual/mdpy/mdpy\n');
  t.equal(r[9]!.out, '83b8f4f2-509f-382f-3c1e-e6bfe0fa1001\n');
  t.match(r[10]!.out, /^(\.\.\/){5}kernel\/iommu_groups\/\d+\n$/);
  t.equal(r[11]!.out, '0\n', 'removed');
});

t.test('a change to a host entry is EROFS and the host keeps its value', async t => {
  const mtu = readFileSync('/sys/class/net/lo/mtu', 'utf8');
  const { results: r } = await runSteps(t, [
    errnoOf("os.open('/sys/class/net/lo/mtu', os.O_WRONLY)"),
    errnoOf("os.open('/sys/class/net/lo/mtu', os.O_RDONLY | os.O_TRUNC)"),
    errnoOf("os.chmod('/sys/class/net/lo/mtu', 0o600)"),
    errnoOf("os.mkdir('/sys/class/net/lo/x')"),
    errnoOf("os.unlink('/sys/class/net/lo/mtu')"),
    errnoOf("os.symlink('x', '/sys/devices/system/cpu/y')"),
    errnoOf("os.access('/sys/class/net/lo/mtu', os.W_OK) or (_ for _ in ()).throw(OSError(30, 'no'))"),
    // The host's own value: should the refusal ever regress, the host's lo still keeps its MTU.
    { sh: `echo ${mtu.trim()} > /sys/class/net/lo/mtu` },
    { argv: ['cat', '/sys/class/net/lo/mtu'] },
    // devices/system is bound from the host's sysfs, read-only (src/run/host-binds.ts).
    { sh: 'awk \'$5 == "/sys/devices/system" { print $6, $9 }\' /proc/self/mountinfo' },
    errnoOf("os.open('/sys/devices/system/cpu/online', os.O_WRONLY)"),
    // The emulated entries keep sysfs's own errnos.
    errnoOf("os.mkdir('/sys/class/mdev_bus/x')"),
    errnoOf("os.unlink('/sys/bus/mdev/drivers_probe')"),
  ]);
  t.same(
    r.slice(0, 7).map(x => x.out.trim()),
    ['EROFS', 'EROFS', 'EROFS', 'EROFS', 'EROFS', 'EROFS', 'EROFS'],
    'open for writing, O_TRUNC, chmod, mkdir, unlink, symlink, access(W_OK)',
  );
  t.not(r[7]!.code, 0, 'echo > a host attribute fails');
  t.match(r[7]!.err, /Read-only file system/);
  t.equal(r[8]!.out, mtu, 'unchanged inside');
  t.equal(readFileSync('/sys/class/net/lo/mtu', 'utf8'), mtu, 'unchanged on the host');
  t.match(r[9]!.out, /^ro\S* sysfs\n$/, "devices/system: a read-only bind of the host's sysfs");
  t.equal(r[10]!.out, 'EROFS\n', 'and EROFS there too');
  t.same(
    r.slice(11).map(x => x.out.trim()),
    ['EPERM', 'EPERM'],
  );
});

t.test("the NVIDIA example's PCI parents sit beside the host's PCI devices; links between the two resolve", async t => {
  const hostPci = readdirSync('/sys/bus/pci/devices');
  const first = hostPci.sort()[0];
  const { results: r } = await runSteps(
    t,
    [
      { argv: ['ls', '/sys/bus/pci/devices'] },
      { sh: first ? `cat /sys/bus/pci/devices/${first}/vendor; readlink -f /sys/bus/pci/devices/${first}` : 'true' },
      { sh: 'cat /sys/bus/pci/devices/0000:3b:00.0/vendor; readlink -f /sys/bus/pci/devices/0000:3b:00.0' },
      { sh: 'ls /sys/bus/pci/devices/0000:3b:00.0/mdev_supported_types | head -1' },
      { sh: "stat -c '%i' /sys/bus/pci/devices/0000:3b:00.0/vendor /sys/class/net/lo/mtu" },
    ],
    ['--driver', NVIDIA],
  );
  t.equal(r[0]!.out, sorted([...hostPci, '0000:3b:00.0', '0000:d8:00.0']), "the host's PCI devices and the emulated parents");
  if (first) {
    t.equal(r[1]!.out, readFileSync(`/sys/bus/pci/devices/${first}/vendor`, 'utf8') + `/sys/devices/${await hostPciPath(first)}\n`);
  }
  t.equal(r[2]!.out, '0x10de\n/sys/devices/pci0000:3a/0000:3a:00.0/0000:3b:00.0\n');
  t.match(r[3]!.out, /^nvidia-\d+\n$/);
  const [emulated, host] = lines(r[4]!.out).map(Number);
  t.ok(emulated! < 2 ** 31 && host! >= 2 ** 31, `inode numbers from disjoint halves (${emulated}, ${host})`);
});

/** Where the host's bus/pci/devices/<name> link leads, below /sys/devices/. */
async function hostPciPath(name: string): Promise<string> {
  const real = await fsp.realpath(`/sys/bus/pci/devices/${name}`);
  return real.replace(/^\/sys\/devices\//, '');
}

t.test('--bare: the emulated tree alone, as before', async t => {
  const { results: r } = await runSteps(t, [{ argv: ['ls', '/sys'] }, { sh: 'cat /sys/devices/system/cpu/online' }], ['--bare']);
  t.equal(r[0]!.out, 'bus\nclass\ndevices\nkernel\n');
  t.not(r[1]!.code, 0, 'no CPUs');
});

t.test('the legacy profile over the host', async t => {
  const { results: r } = await runSteps(
    t,
    [{ argv: ['cat', '/sys/devices/system/cpu/online'] }, { argv: ['ls', '/sys/class/mdev_bus'] }],
    ['--profile', 'legacy'],
  );
  t.equal(r[0]!.out, readFileSync('/sys/devices/system/cpu/online', 'utf8'));
  t.match(r[1]!.out, /mtty/);
});
