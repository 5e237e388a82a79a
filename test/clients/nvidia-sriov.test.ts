// NVIDIA's SR-IOV GPUs through a real mount inside `mdevfs run`: the public
// clients' exact reads and writes (nvidia_sriov.py names their sources)
// against examples/nvidia-ampere.ts (A10: mdev on each VF) and
// examples/nvidia-vgpu17.ts (L40S: nvidia/current_vgpu_type on each VF),
// sriov_numvfs written as an admin writes it, and the VFs' uevents as a
// libudev monitor (udevadm) hears them.
import t, { type Test } from 'tap';
import path from 'node:path';
import { PYTHON } from '../helpers/util.js';
import { REPO, mdevfsRun, runSteps, unmountLeftovers } from '../run/helpers.js';

t.teardown(unmountLeftovers);

const SCRIPT = path.join(REPO, 'test/clients/nvidia_sriov.py');
const AMPERE = path.join(REPO, 'examples/nvidia-ampere.ts');
const VGPU17 = path.join(REPO, 'examples/nvidia-vgpu17.ts');
const PF = '0000:41:00.0';
/** The A10's 24 VFs: 0000:41:00.4 on, function by function (offset 4, stride 1). */
const VFS = Array.from({ length: 24 }, (_, i) => {
  const fn = 4 + i;
  return `0000:41:0${fn >> 3}.${fn & 7}`;
});

/** A device as nvpci read it (nvidia_sriov.py nvpci_device). */
interface NvDev {
  address: string;
  device: number;
  driver: string;
  iommu_group: number;
  resources: number;
  sriov: { vf_of?: string; total_vfs?: number; num_vfs?: number };
}

async function scenario(t: Test, driver: string, name: string): Promise<Record<string, any>> {
  const r = await mdevfsRun(t, ['--driver', driver, '--', PYTHON, SCRIPT, name], { timeoutMs: 120_000 });
  t.equal(r.code, 0, `${name}: ${r.stderr}`);
  return JSON.parse(r.stdout) as Record<string, any>;
}

t.test('go-nvlib and vgpu-device-manager on Ampere: VFs as mdev parents, the create-until-full loop', async t => {
  const a = await scenario(t, AMPERE, 'ampere');
  const devices = a.devices as NvDev[];
  const pf = devices.find(d => d.address === PF)!;
  t.same(pf.sriov, { total_vfs: 24, num_vfs: 24 }, 'nvpci: a PF by sriov_totalvfs and sriov_numvfs (ParseUint base 0)');
  t.equal(pf.iommu_group, 30);
  const vfs = devices.filter(d => d.address !== PF);
  t.same(
    vfs.map(d => d.address),
    VFS,
    'every VF under /sys/bus/pci/devices',
  );
  t.ok(
    vfs.every(d => d.sriov.vf_of === PF && d.device === 0x2236 && d.driver === 'nvidia' && d.resources === 2),
    'each VF: physfn resolved through bus/pci/devices to the PF, VF device id, bound to nvidia, its two BARs',
  );
  t.same(
    vfs.map(d => d.iommu_group),
    VFS.map((_, i) => 200 + i),
    'each VF its own IOMMU group',
  );
  t.same(a.gpus, [PF], 'GetGPUs: the PF only (a VF has physfn)');
  t.same(
    a.parents,
    VFS.map(v => [v, PF, 18]),
    'nvmdev: every VF is a parent with the 18 A10 types; GetPhysicalFunction is the PF',
  );
  const types = a.types as string[];
  t.ok(types.includes('A10-4Q') && types.includes('A10-24A'));
  t.same(
    a.fill_available,
    VFS.slice(0, 6).map(v => [v, 1]),
    'SetVGPUConfig {A10-4Q: 6}: one vGPU per VF, available_instances 1 each',
  );
  t.same(a.config, { 'A10-4Q': 6 });
  t.same(
    a.devices_after_fill,
    VFS.slice(0, 6).map(v => [v, 'A10-4Q', 'nvidia-vgpu-vfio']),
    'EvalSymlinks: each vGPU under its VF',
  );
  t.same(a.available_4q, Array(24).fill(0), 'the GPU is full (24 GB / 4 GB): every VF reads 0');
  t.equal(a.available_2q, 0, 'another type on any VF: 0 while A10-4Q runs');
  t.equal(
    a.overask,
    "failed to create 7 A10-4Q vGPU devices on the GPU. ensure '7' does not exceed the maximum supported instances for 'A10-4Q'",
  );
  t.same(a.config_after_overask, { 'A10-4Q': 6 });
  t.same(a.config_2q, { 'A10-2Q': 12 }, 'cleared, then 12 A10-2Q on 12 VFs');
  t.same(a.config_cleared, {});
  t.same(
    a.kubevirt,
    { configured: 24, writes: [36, 36, 36], with_vgpu: VFS.slice(0, 3) },
    'KubeVirt configures every VF parent in turn, creating as many as each says: 1, 1, 1, then 0 (A10-8Q: 3 per GPU)',
  );
  t.same(a.kubevirt_config, { 'A10-8Q': 3 });
  t.same(a.kubevirt_again, { configured: 21, writes: [], with_vgpu: [] }, 'a second pass skips the VFs hosting a vGPU');
});

t.test('vGPU 17 on an L40S: vgpu-device-manager through current_vgpu_type, KubeVirt 1.9 discovers the VFs', async t => {
  const v = await scenario(t, VGPU17, 'vgpu17');
  t.same(v.gpus, [PF]);
  t.equal(v.capable, true, 'sriov_totalvfs and driver -> nvidia: a vGPU-capable PF');
  t.equal(v.pf_has_nvidia_dir, false, 'the PF has no nvidia/');
  t.same([v.disable, v.vfs_before, v.sriov_manage_first], [2, 0, 3], 'echo 0 > sriov_numvfs removes every virtfn; 32 enables them again');
  t.equal(v.supported.length, 10);
  t.same(v.enabled, [3], 'no VFs: SetVGPUConfig ran sriov-manage -e (sriov_totalvfs into sriov_numvfs)');
  t.same(v.vfs, ['0000:41:00.4', '0000:41:00.5', '0000:41:00.6', '0000:41:00.7']);
  t.same(v.resolved_from_sysfs, { 'L40S-24Q': 1 });
  t.same(v.creatable_after_one, [1155], 'one L40S-24Q: a free VF lists only the 24 GB types');
  t.equal(v.creatable_on_holder, 'ID    : vGPU Name\n', 'the VF holding it lists none');
  t.same(v.creatable_full, [], 'two L40S-24Q fill 48 GB: nothing creatable anywhere');
  t.equal(v.creatable_full_text, 'ID    : vGPU Name\n');
  t.same(v.config_24q, { 'L40S-24Q': 2 }, 'GetVGPUConfig from current_vgpu_type');
  t.equal(
    v.overask,
    "failed to create 2 L40S-48Q vGPU devices on the GPU. ensure '2' does not exceed the maximum supported instances for 'L40S-48Q'",
  );
  t.same(v.config_12q, { 'L40S-12Q': 4 });
  t.same(v.currents, [1153, 1153, 1153, 1153, 0]);
  t.same(v.placements, ['0', '3', 'Not Applicable']);
  t.same(
    v.kubevirt,
    {
      'nvidia.com/NVIDIA_L40S': ['0000:41:00.4', '0000:41:00.5', '0000:41:00.6', '0000:41:00.7'].map((address, i) => ({
        address,
        iommu_group: String(200 + i),
        numa_node: 0,
        driver: 'nvidia',
      })),
    },
    'KubeVirt: the VFs with a non-zero current_vgpu_type (the PF and free VFs skipped), their groups and NUMA node',
  );
  t.equal(v.disable_busy, 'EBUSY', 'sriov_numvfs 0 while vGPUs exist: refused (nvidia-choices.ts)');
  t.equal(v.busy_vf_write, 'EBUSY', 'a type on a VF that holds one');
  t.equal(v.not_creatable, 'EINVAL', 'a type the VF does not list');
  t.same(v.config_cleared, {});
  t.same(v.creatable_cleared, [1147, 1148, 1149, 1150, 1151, 1152, 1153, 1154, 1155, 1159], 'every type creatable again');
  t.same(v.kubevirt_cleared, {});
});

t.test('sriov_numvfs as an admin writes it: the kernel refusals, VFs and their links', async t => {
  const s = await scenario(t, AMPERE, 'sriov');
  t.same(s.files, {
    sriov_totalvfs: '24\n',
    sriov_numvfs: '24\n',
    sriov_offset: '4\n',
    sriov_stride: '1\n',
    sriov_vf_device: '2236\n',
    sriov_drivers_autoprobe: '1\n',
  });
  t.same(s.modes, { sriov_numvfs: '0o664', sriov_totalvfs: '0o444', sriov_drivers_autoprobe: '0o644' });
  t.same(
    s.writes,
    { over: 'ERANGE', u16_overflow: 'ERANGE', negative: 'EINVAL', word: 'EINVAL', same: 3, other: 'EBUSY' },
    'sriov_numvfs_store: kstrtou16, > totalvfs ERANGE, the same value accepted, non-zero to non-zero EBUSY',
  );
  t.equal(s.numvfs_after_refusals, '24\n');
  t.equal(s.create, 36);
  t.equal(s.disable_with_vgpu, 'EBUSY', 'the PF driver refuses while a VF holds a vGPU (nvidia-choices.ts)');
  t.equal(s.vgpu_still_there, true);
  t.same([s.remove, s.disable], [1, 1]);
  t.same(s.after_disable, { numvfs: '0\n', virtfn: [], mdev_bus: [], vf_dir: false }, 'the VFs, their parents and links are gone');
  t.same([s.autoprobe_off, s.enable_unprobed], [1, 1]);
  t.same(
    s.unprobed,
    { driver: false, mdev_bus: [], uevent: 'PCI_CLASS=30200' },
    'sriov_drivers_autoprobe 0: VFs stay unbound (no driver, no DRIVER=, no mdev parent)',
  );
  t.same([s.redisable, s.autoprobe_on, s.enable], [1, 1, 2]);
  t.same(s.after_enable, {
    numvfs: '2\n',
    links: { virtfn0: '../0000:41:00.4', virtfn1: '../0000:41:00.5' },
    physfn: `../${PF}`,
    physfn_via_bus: `/sys/devices/pci0000:40/0000:40:01.1/${PF}`,
    driver: '../../../../bus/pci/drivers/nvidia',
    iommu_group: '../../../../kernel/iommu_groups/201',
    group_devices: ['0000:41:00.5'],
    vf_device: '0x2236\n',
    mdev_bus: ['0000:41:00.4', '0000:41:00.5'],
    bus_drivers: [PF, '0000:41:00.4', '0000:41:00.5'],
  });
});

t.test('a libudev monitor hears the VFs come and go in the kernel order', async t => {
  const mon = '/run/mdevfs-test-sriov.out';
  const sysPf = `/sys/bus/pci/devices/${PF}`;
  const { results: r } = await runSteps(
    t,
    [
      {
        sh: `udevadm monitor --udev --property --subsystem-match=pci --subsystem-match=${PF} >${mon} 2>&1 </dev/null & echo $! > ${mon}.pid
             i=0; until grep -q '^UDEV - ' ${mon} 2>/dev/null || [ $i -ge 100 ]; do sleep 0.05; i=$((i+1)); done; sleep 0.2`,
      },
      { sh: `echo 0 > ${sysPf}/sriov_numvfs && echo 2 > ${sysPf}/sriov_numvfs` },
      {
        sh: `i=0; until grep -q "^UDEV .* change .*${PF} (pci)" ${mon} || [ $i -ge 100 ]; do sleep 0.05; i=$((i+1)); done; kill $(cat ${mon}.pid); cat ${mon}`,
      },
    ],
    ['--driver', AMPERE],
  );
  t.equal(r[1]!.code, 0, r[1]!.err);
  const events = [...r[2]!.out.matchAll(/^UDEV +\[[\d.]+\] (\w+) +(\S+) \((\S+)\)$/gm)].map(m => `${m[1]} ${m[2]!.split('/').pop()}`);
  // The VF driver's remove unregisters its mdev parent (change, MDEV_STATE=unregistered) before the unbind;
  // its probe registers it (MDEV_STATE=registered) between add and bind.
  const disable = VFS.flatMap(v => [`change ${v}`, `unbind ${v}`, `remove ${v}`]);
  const enable = VFS.slice(0, 2).flatMap(v => [`add ${v}`, `change ${v}`, `bind ${v}`]);
  t.same(
    events,
    [...disable, ...enable, `change ${PF}`],
    'disable: per VF, then nothing for the PF; enable: per VF, then the PF change (sriov_enable)',
  );
  const states = [...r[2]!.out.matchAll(/^MDEV_STATE=(\w+)$/gm)].map(m => m[1]);
  t.same(states, [...Array(24).fill('unregistered'), 'registered', 'registered']);
  t.match(
    r[2]!.out,
    /\nACTION=bind\nDEVPATH=\/devices\/pci0000:40\/0000:40:01.1\/0000:41:00.4\nSUBSYSTEM=pci\nDRIVER=nvidia\nPCI_CLASS=30200\n/,
  );
  t.match(r[2]!.out, /\nACTION=add\nDEVPATH=[^\n]+0000:41:00.4\nSUBSYSTEM=pci\nPCI_CLASS=30200\nPCI_ID=10DE:2236\n/, 'add: no DRIVER yet');
});
