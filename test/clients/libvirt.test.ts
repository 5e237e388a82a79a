// Debian's real libvirtd (node-device driver only, private state: see
// libvirt-sandbox.sh) inside a plain `mdevfs run`: it lists the mtty parent
// (libvirt 9.0 names it mtty_mtty; of the class-device samples it knows only
// the subsystem mtty), its types and its mdevs, by enumeration and by the
// udev events; nodedev-create/define/start/undefine work through mdevctl;
// python3-libvirt answers Nova's questions. Every libvirt call is bounded;
// libvirtd dies with the run (the sandbox stops it, and the run's PID 1
// takes whatever is left). Nothing of the host's libvirt or /run changes.
import t from 'tap';
import { existsSync, promises as fsp, readFileSync } from 'node:fs';
import path from 'node:path';
import { REPO } from '../helpers/daemon.js';
import { PYTHON, uuid } from '../helpers/util.js';
import { NVIDIA, mdevfsRun, parseSteps, snapshot, stepsCommand, unmountLeftovers, type Step, type StepResult } from '../run/helpers.js';

t.teardown(unmountLeftovers);

const SANDBOX = path.join(REPO, 'test/clients/libvirt-sandbox.sh');
const NOVA = path.join(REPO, 'test/clients/libvirt_nova.py');
const URI = 'nodedev:///system';
const MTTY = '/sys/class/mdev_bus/mtty/mdev_supported_types';
const missing = ['/usr/sbin/libvirtd', '/usr/bin/virsh'].filter(f => !existsSync(f));
/** Every test is skipped, with this reason, where libvirt is not installed (.ci/run installs it). */
const skip =
  missing.length > 0
    ? `libvirt is not installed (${missing.join(', ')}): apt-get install libvirt-daemon libvirt-clients python3-libvirt`
    : false;

// /run/udev itself is left out: a host udevd touches it for every event. Its
// database is checked for entries of our char devices (majors 510, 511) instead.
const HOST_DIRS = ['/etc/libvirt', '/var/lib/libvirt', '/var/cache/libvirt', '/var/log/libvirt', '/run/libvirt'];
const hostBefore = Promise.all(HOST_DIRS.map(d => snapshot(d)));
const ourDbEntries = async () => (await fsp.readdir('/run/udev/data').catch(() => [] as string[])).filter(n => /^c51[01]:/.test(n)).sort();
const hostDbBefore = ourDbEntries();
/** libvirtd processes: the host may run its own, which are not ours. */
async function libvirtds(): Promise<string[]> {
  const out: string[] = [];
  for (const p of (await fsp.readdir('/proc')).filter(p => /^\d+$/.test(p))) {
    const comm = await fsp.readFile(`/proc/${p}/comm`, 'utf8').catch(() => '');
    if (comm.trim() === 'libvirtd') out.push(p);
  }
  return out;
}
const libvirtdBefore = libvirtds();
const hostRunBefore = fsp.readdir('/run').then(e => e.sort());

/** libvirt's name for a mediated device of the mtty parent. */
const mdevName = (u: string) => `mdev_${u.replace(/-/g, '_')}_mtty`;
/** A bounded virsh call. */
const virsh = (...args: string[]): Step => ({ argv: ['virsh', '-c', URI, ...args], timeout: 20 });
/** Poll (≤ 15 s) until `virsh nodedev-list <args>` does (or, with `absent`, does not) list `name`; prints the tries. */
const untilListed = (name: string, args: string, absent = false): Step => ({
  sh: `i=0; while [ $i -lt 150 ]; do
         if timeout 5 virsh -c ${URI} nodedev-list ${args} | grep -qx '${name}'; then f=1; else f=0; fi
         [ $f = ${absent ? 0 : 1} ] && { echo "after $i"; exit 0; }
         i=$((i+1)); sleep 0.1
       done; echo "not ${absent ? 'gone' : 'listed'} after 15 s"; exit 1`,
  timeout: 30,
});

/** Run `steps` inside `mdevfs run [runArgs] -- [sh -c before &&] libvirt-sandbox.sh python3 …`. */
async function withLibvirt(steps: Step[], o: { runArgs?: string[]; before?: string; qemu?: boolean } = {}): Promise<StepResult[]> {
  const inner = ['sh', SANDBOX, ...stepsCommand(steps)];
  const cmd = o.before ? ['sh', '-c', `${o.before} && exec "$@"`, 'before', ...inner] : inner;
  const env = o.qemu ? { ...process.env, LIBVIRT_SANDBOX_QEMU: '1' } : process.env;
  return parseSteps(await mdevfsRun(t, [...(o.runArgs ?? []), '--', ...cmd], { timeoutMs: 200_000, env }));
}

/** The types of a parent's XML: id → [name, deviceAPI, availableInstances]. */
function xmlTypes(xml: string): Record<string, [string, string, number]> {
  const out: Record<string, [string, string, number]> = {};
  for (const m of xml.matchAll(
    /<type id='([^']+)'>\s*<name>([^<]*)<\/name>\s*<deviceAPI>([^<]*)<\/deviceAPI>\s*<availableInstances>(\d+)</g,
  )) {
    out[m[1]!] = [m[2]!, m[3]!, Number(m[4])];
  }
  return out;
}

/** The same from the tree: `id|name|device_api|available_instances` lines. */
const TREE_TYPES = (dir: string): Step => ({
  sh: `for d in ${dir}/*/; do printf '%s|%s|%s|%s\\n' "$(basename $d)" "$(cat $d/name)" "$(cat $d/device_api)" "$(cat $d/available_instances)"; done`,
});
function treeTypes(out: string): Record<string, [string, string, number]> {
  const o: Record<string, [string, string, number]> = {};
  for (const l of out.split('\n').filter(Boolean)) {
    const [id, name, api, n] = l.split('|');
    o[id!] = [name!, api!, Number(n)];
  }
  return o;
}

t.test('libvirtd lists mtty_mtty, its types and mdevs, hears hot-plug in seconds; python3-libvirt as Nova', { skip }, async t => {
  const [u0, u1] = [uuid(0x1001), uuid(0x1002)];
  const r = await withLibvirt(
    [
      virsh('nodedev-list', '--cap', 'mdev_types'),
      virsh('nodedev-list', '--cap', 'mdev'),
      virsh('nodedev-dumpxml', 'mtty_mtty'),
      TREE_TYPES(MTTY),
      virsh('nodedev-dumpxml', mdevName(u0)),
      { sh: 'readlink /sys/bus/mdev/devices/' + u0 + '/iommu_group' },
      // Events: a listener, then a create and a remove written to sysfs directly.
      {
        sh: `timeout 40 virsh -c ${URI} nodedev-event --event lifecycle --loop --timeout 30 >/run/mdevfs-ev.out 2>&1 </dev/null & echo $! >/run/mdevfs-ev.pid; sleep 1`,
      },
      { sh: `echo ${u1} > ${MTTY}/mtty-2/create` },
      untilListed(mdevName(u1), '--cap mdev'),
      virsh('nodedev-dumpxml', 'mtty_mtty'),
      TREE_TYPES(MTTY),
      { sh: `echo 1 > /sys/bus/mdev/devices/${u1}/remove` },
      untilListed(mdevName(u1), '--cap mdev', true),
      {
        sh: `i=0; until grep -q Deleted /run/mdevfs-ev.out || [ $i -ge 50 ]; do sleep 0.1; i=$((i+1)); done; kill $(cat /run/mdevfs-ev.pid); cat /run/mdevfs-ev.out`,
        timeout: 15,
      },
      { argv: ['timeout', '30', PYTHON, NOVA, URI], timeout: 40 },
    ],
    { before: `echo ${u0} > ${MTTY}/mtty-1/create` },
  );
  for (const [i, s] of r.entries()) t.equal(s.code, 0, `step ${i}: ${s.err}`);
  t.equal(r[0]!.out.trim(), 'mtty_mtty', 'the one mdev parent libvirt 9.0 recognises among the samples');
  t.equal(r[1]!.out.trim(), mdevName(u0), 'a device made before libvirtd started: found by enumeration');
  const types = xmlTypes(r[2]!.out);
  t.same(types, treeTypes(r[3]!.out), "parent XML: every type's name, deviceAPI and availableInstances equal the tree's");
  t.same(Object.keys(types), ['mtty-1', 'mtty-2']);
  t.match(r[2]!.out, /<path>\/sys\/devices\/virtual\/mtty\/mtty<\/path>/);
  const group = path.basename(r[5]!.out.trim());
  t.match(r[4]!.out, new RegExp(`<parent>mtty_mtty</parent>`), 'mdev XML: parent');
  t.match(r[4]!.out, /<capability type='mdev'>[\s\S]*<type id='mtty-1'\/>/, 'mdev XML: type');
  t.match(r[4]!.out, new RegExp(`<uuid>${u0}</uuid>`), 'mdev XML: uuid');
  t.match(r[4]!.out, new RegExp(`<iommuGroup number='${group}'/>`), 'mdev XML: IOMMU group');
  t.match(r[8]!.out, /^after \d+\n$/, `hot-plugged device listed (${r[8]!.out.trim()} polls of 0.1 s)`);
  t.comment(`listed ${r[8]!.out.trim()} polls after the create; gone ${r[12]!.out.trim()} polls after the remove`);
  t.same(xmlTypes(r[9]!.out), treeTypes(r[10]!.out), 'availableInstances follow the tree after a create');
  t.equal(xmlTypes(r[9]!.out)['mtty-2']![2], types['mtty-2']![2] - 1);
  t.match(r[12]!.out, /^after \d+\n$/, 'removed device gone');
  t.match(r[13]!.out, new RegExp(`event 'lifecycle' for node device ${mdevName(u1)}: Created`), 'nodedev-event: created');
  t.match(r[13]!.out, new RegExp(`event 'lifecycle' for node device ${mdevName(u1)}: Deleted`), 'nodedev-event: deleted');
  const nova = JSON.parse(r[14]!.out) as {
    listDevices: string[];
    mdevTypesParents: string[];
    mdevs: string[];
    types: Record<string, Record<string, { name: string; deviceAPI: string; availableInstances: number }>>;
  };
  t.same(nova.listDevices, ['mtty_mtty'], "listDevices('mdev_types')");
  t.same(nova.mdevTypesParents, ['mtty_mtty'], 'listAllDevices(CAP_MDEV_TYPES)');
  t.same(nova.mdevs, [mdevName(u0)], 'listAllDevices(CAP_MDEV)');
  t.same(
    Object.fromEntries(Object.entries(nova.types.mtty_mtty!).map(([id, v]) => [id, [v.name, v.deviceAPI, v.availableInstances]])),
    treeTypes(r[3]!.out),
    'types as Nova reads them',
  );
});

t.test('nodedev-create (≤ 15 s), nodedev-define, nodedev-start, nodedev-undefine', { skip }, async t => {
  const [u2, u3] = [uuid(0x2001), uuid(0x2002)];
  const xml = (u: string, type: string) =>
    `<device><parent>mtty_mtty</parent><capability type='mdev'><type id='${type}'/><uuid>${u}</uuid></capability></device>`;
  const r = await withLibvirt([
    { sh: `cat > /run/mdevfs-c.xml`, input: xml(u2, 'mtty-1') },
    { ...virsh('nodedev-create', '/run/mdevfs-c.xml'), timeout: 15 },
    { sh: `test -e /sys/bus/mdev/devices/${u2} && echo present` },
    untilListed(mdevName(u2), '--cap mdev'),
    { sh: `cat > /run/mdevfs-d.xml`, input: xml(u3, 'mtty-2') },
    virsh('nodedev-define', '/run/mdevfs-d.xml'),
    untilListed(mdevName(u3), '--cap mdev --inactive'),
    { sh: `find /etc/mdevctl.d -name ${u3}` },
    virsh('nodedev-start', mdevName(u3)),
    { sh: `test -e /sys/bus/mdev/devices/${u3} && echo present; cat /sys/bus/mdev/devices/${u3}/mdev_type/name` },
    untilListed(mdevName(u3), '--cap mdev'),
    virsh('nodedev-undefine', mdevName(u3)),
    { sh: `find /etc/mdevctl.d -name ${u3}` },
  ]);
  t.equal(r[1]!.code, 0, `nodedev-create within 15 s: ${r[1]!.out}${r[1]!.err}`);
  t.match(r[1]!.out, new RegExp(`Node device ${mdevName(u2)} created`));
  t.equal(r[2]!.out, 'present\n', 'the device exists in the tree');
  t.equal(r[3]!.code, 0, 'and in libvirt');
  t.equal(r[5]!.code, 0, `nodedev-define: ${r[5]!.err}`);
  t.equal(r[6]!.code, 0, `defined device listed as inactive: ${r[6]!.out}`);
  t.match(r[7]!.out, new RegExp(`^/etc/mdevctl.d/mtty/${u3}\\n$`), "mdevctl's config, in the run's scratch /etc/mdevctl.d");
  t.equal(r[8]!.code, 0, `nodedev-start: ${r[8]!.err}`);
  t.equal(r[9]!.out, 'present\nDual port serial\n', 'started in the tree');
  t.equal(r[10]!.code, 0, 'listed as active');
  t.equal(r[11]!.code, 0, `nodedev-undefine: ${r[11]!.err}`);
  t.equal(r[12]!.out, '', 'its config is gone');
});

t.test('nodedev-destroy', { skip }, async t => {
  // libvirt holds /dev/vfio/<group> open while mdevctl stop writes `remove`
  // (node_device_driver.c nodeDeviceDestroy). In the kernel opening the group
  // file only claims the group (a second open gets EBUSY: vfio_group_fops_open),
  // so the remove goes through; where opening it opened the device, `remove`
  // waited for the close and libvirtd deadlocked.
  const u = uuid(0x3001);
  const r = await withLibvirt(
    [
      {
        argv: [
          PYTHON,
          '-c',
          `import os\ng = os.path.basename(os.readlink('/sys/bus/mdev/devices/${u}/iommu_group'))\na = os.open('/dev/vfio/' + g, os.O_RDWR)\ntry:\n    os.open('/dev/vfio/' + g, os.O_RDWR); print('shared')\nexcept OSError as e:\n    print(os.strerror(e.errno))`,
        ],
        timeout: 10,
      },
      virsh('nodedev-destroy', mdevName(u)),
      { sh: `test -e /sys/bus/mdev/devices/${u} && echo present || echo gone` },
    ],
    { before: `echo ${u} > ${MTTY}/mtty-1/create` },
  );
  t.equal(r[0]!.out.trim(), 'Device or resource busy', 'the group file is claimed by one opener at a time');
  t.equal(r[1]!.code, 0, `nodedev-destroy: ${r[1]!.out}${r[1]!.err}`);
  t.equal(r[2]!.out, 'gone\n');
});

t.test('NVIDIA example: PCI parents with their PCIe link, types and mdevs', { skip }, async t => {
  // The first T4 of examples/nvidia-vgpu.ts.
  const addr = '0000:3b:00.0';
  const name = 'pci_0000_3b_00_0';
  const u = uuid(0x4001);
  const mdev = `mdev_${u.replace(/-/g, '_')}_0000_3b_00_0`;
  const r = await withLibvirt(
    [
      virsh('nodedev-list', '--cap', 'mdev_types'),
      virsh('nodedev-dumpxml', name),
      TREE_TYPES(`/sys/class/mdev_bus/${addr}/mdev_supported_types`),
      { sh: `echo ${u} > /sys/class/mdev_bus/${addr}/mdev_supported_types/nvidia-222/create && echo created` },
      untilListed(mdev, '--cap mdev'),
      virsh('nodedev-dumpxml', mdev),
    ],
    { runArgs: ['--driver', NVIDIA] },
  );
  t.equal(r[0]!.code, 0, r[0]!.err);
  t.match(r[0]!.out, new RegExp(`^${name}$`, 'm'), `${name} listed with --cap mdev_types`);
  t.same(xmlTypes(r[1]!.out), treeTypes(r[2]!.out), "its types equal the tree's, available instances included");
  t.match(
    r[1]!.out,
    /<pci-express>\s*<link validity='cap' port='\d+' speed='8' width='16'\/>\s*<link validity='sta' speed='8' width='16'\/>/,
    'the PCIe link from the config space: 8 GT/s x16',
  );
  t.equal(r[3]!.out.trim(), 'created');
  t.equal(r[4]!.code, 0, `the mdev is listed with --cap mdev: ${r[4]!.out}`);
  t.match(r[5]!.out, /<type id='nvidia-222'\/>/, "the mdev's type");
  t.match(r[5]!.out, new RegExp(`<parent>${name}</parent>`), 'its parent');
});

t.test('NVIDIA Ampere example: the VFs are the mdev parents, with their PF; SR-IOV changes are heard', { skip }, async t => {
  // examples/nvidia-ampere.ts: an A10 PF 0000:41:00.0 with 24 VFs from 0000:41:00.4.
  const pf = 'pci_0000_41_00_0';
  const vf0 = 'pci_0000_41_00_4';
  const u = uuid(0x4101);
  const r = await withLibvirt(
    [
      virsh('nodedev-list', '--cap', 'mdev_types'),
      virsh('nodedev-dumpxml', pf),
      virsh('nodedev-dumpxml', vf0),
      TREE_TYPES('/sys/class/mdev_bus/0000:41:00.4/mdev_supported_types'),
      { sh: `echo ${u} > /sys/class/mdev_bus/0000:41:00.4/mdev_supported_types/nvidia-593/create && echo created` },
      virsh('nodedev-dumpxml', vf0),
      virsh('nodedev-dumpxml', 'pci_0000_41_00_5'),
      {
        sh: 'for f in /sys/bus/mdev/devices/*/remove; do echo 1 > $f; done && echo 0 > /sys/bus/pci/devices/0000:41:00.0/sriov_numvfs && echo disabled',
      },
      untilListed(vf0, '--cap pci', true),
      virsh('nodedev-list', '--cap', 'mdev_types'),
      { sh: 'echo 2 > /sys/bus/pci/devices/0000:41:00.0/sriov_numvfs && echo enabled' },
      untilListed('pci_0000_41_00_5', '--cap mdev_types'),
      virsh('nodedev-list', '--cap', 'mdev_types'),
    ],
    { runArgs: ['--driver', path.join(REPO, 'examples/nvidia-ampere.ts')] },
  );
  const vfNames = Array.from({ length: 24 }, (_, i) => `pci_0000_41_0${(4 + i) >> 3}_${(4 + i) & 7}`);
  t.equal(r[0]!.code, 0, r[0]!.err);
  t.same(r[0]!.out.split('\n').filter(Boolean).sort(), [...vfNames].sort(), 'the 24 VFs, not the PF, are mdev_types devices');
  t.match(r[1]!.out, /<capability type='virt_functions' maxCount='24'>/, "the PF's virt_functions, maxCount from sriov_totalvfs");
  t.equal(
    [...(/<capability type='virt_functions'[^]*?<\/capability>/.exec(r[1]!.out)?.[0] ?? '').matchAll(/<address /g)].length,
    24,
    'one address per virtfn link',
  );
  t.match(
    r[2]!.out,
    /<capability type='phys_function'>\s*<address domain='0x0000' bus='0x41' slot='0x00' function='0x0'\/>/,
    "a VF's phys_function from physfn",
  );
  t.same(xmlTypes(r[2]!.out), treeTypes(r[3]!.out), "the VF's 18 types as the tree shows them");
  t.equal(Object.keys(xmlTypes(r[2]!.out)).length, 18);
  t.equal(r[4]!.out.trim(), 'created');
  t.ok(
    Object.values(xmlTypes(r[5]!.out)).every(([, , n]) => n === 0),
    'the VF holding a vGPU: 0 of every type',
  );
  const sibling = xmlTypes(r[6]!.out);
  t.equal(sibling['nvidia-593']![2], 1, 'a sibling VF: 1 of the running type');
  t.equal(sibling['nvidia-594']![2], 0, 'and 0 of any other');
  t.equal(r[7]!.out.trim(), 'disabled');
  t.equal(r[8]!.code, 0, `the VFs' remove events reach libvirt: ${r[8]!.out}`);
  t.equal(r[9]!.out.trim(), '', 'no mdev parent left');
  t.equal(r[11]!.code, 0, `the add events of two new VFs: ${r[11]!.out}`);
  t.same(r[12]!.out.split('\n').filter(Boolean).sort(), vfNames.slice(0, 2));
});

t.test('GVT-g example: the integrated GPU is a parent too', { skip }, async t => {
  const name = 'pci_0000_00_02_0';
  const r = await withLibvirt(
    [
      virsh('nodedev-list', '--cap', 'mdev_types'),
      virsh('nodedev-dumpxml', name),
      TREE_TYPES('/sys/class/mdev_bus/0000:00:02.0/mdev_supported_types'),
    ],
    { runArgs: ['--driver', path.join(REPO, 'examples/intel-gvtg.ts')] },
  );
  t.match(r[0]!.out, new RegExp(`^${name}$`, 'm'), `${name} listed with --cap mdev_types`);
  t.same(xmlTypes(r[1]!.out), treeTypes(r[2]!.out), "its types equal the tree's");
  t.notMatch(r[1]!.out, /<pci-express>\s*<link/, 'an integrated endpoint has no link');
});

/** How many CPUs a cpu list ('0-3,8') names. */
const onlineCpus = (list: string): number =>
  list
    .trim()
    .split(',')
    .reduce((n, r) => {
      const [a, b] = r.split('-').map(Number);
      return n + (b === undefined ? 1 : b - a! + 1);
    }, 0);

const GET_INFO = `import libvirt, json; print(json.dumps(libvirt.open('qemu:///system').getInfo()))`;

t.test("over the host's /sys: nodeinfo and Nova's getInfo() beside the node devices (QEMU driver)", { skip }, async t => {
  const steps: Step[] = [
    { argv: ['virsh', '-c', 'qemu:///system', 'nodeinfo'], timeout: 30 },
    { argv: [PYTHON, '-c', GET_INFO], timeout: 30 },
    virsh('nodedev-list', '--cap', 'mdev_types'),
  ];
  const r = await withLibvirt(steps, { qemu: true });
  const cpus = onlineCpus(readFileSync('/sys/devices/system/cpu/online', 'utf8'));
  t.equal(r[0]!.code, 0, `virsh nodeinfo: ${r[0]!.err}`);
  t.match(r[0]!.out, new RegExp(`^CPU\\(s\\):\\s+${cpus}$`, 'm'), "the host's CPUs");
  t.equal(r[1]!.code, 0, `getInfo(): ${r[1]!.err}`);
  const info = JSON.parse(r[1]!.out) as [string, number, number, number, number, number, number, number];
  t.equal(info[2], cpus, 'getInfo() counts them too');
  t.ok(info[1] > 0, `memory ${info[1]} MiB`);
  t.match(r[2]!.out, /^mtty_mtty$/m, 'the node devices are there as well');

  // The bare tree has no CPUs: libvirt cannot answer (what the overlay fixes).
  const bare = await withLibvirt(steps.slice(0, 1), { qemu: true, runArgs: ['--bare'] });
  t.not(bare[0]!.code, 0, 'with --bare, nodeinfo fails');
});

t.test("the host's libvirt and /run are untouched", { skip }, async t => {
  const after = await Promise.all(HOST_DIRS.map(d => snapshot(d)));
  const before = await hostBefore;
  for (const [i, d] of HOST_DIRS.entries()) t.equal(after[i], before[i], d);
  t.same((await fsp.readdir('/run')).sort(), await hostRunBefore, '/run: no entry added or removed');
  t.same(await ourDbEntries(), await hostDbBefore, "/run/udev/data: no entry of the run's char devices");
  const before2 = new Set(await libvirtdBefore);
  t.same(
    (await libvirtds()).filter(p => !before2.has(p)),
    [],
    'no libvirtd of ours left running',
  );
});
