// The Go clients' exact reads and writes (go_clients.py names their
// sources), reproduced by go_clients.py inside `mdevfs run` against the
// NVIDIA example (2 T4 GPUs):
// KubeVirt (glob discovery, O_WRONLY creates, raw-readlink parents, the
// device plugin's listing), NVIDIA's kubevirt-gpu-device-plugin listing, and
// go-nvlib driven as vgpu-device-manager drives it (O_WRONLY|O_SYNC creates,
// EvalSymlinks, driver and iommu_group required, fill until 0 available).
import t, { type Test } from 'tap';
import path from 'node:path';
import { PYTHON } from '../helpers/util.js';
import { NVIDIA, REPO, mdevfsRun, unmountLeftovers } from '../run/helpers.js';

t.teardown(unmountLeftovers);

const SCRIPT = path.join(REPO, 'test/clients/go_clients.py');
const GPU_A = '0000:3b:00.0';
const GPU_B = '0000:d8:00.0';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

async function scenario(t: Test, name: string): Promise<Record<string, any>> {
  const r = await mdevfsRun(t, ['--driver', NVIDIA, '--', PYTHON, SCRIPT, name]);
  t.equal(r.code, 0, `${name}: ${r.stderr}`);
  return JSON.parse(r.stdout) as Record<string, any>;
}

const full = {
  'nvidia-222': 16,
  'nvidia-223': 8,
  'nvidia-224': 8,
  'nvidia-225': 16,
  'nvidia-226': 8,
  'nvidia-227': 4,
  'nvidia-228': 2,
  'nvidia-229': 1,
  'nvidia-230': 16,
  'nvidia-231': 8,
  'nvidia-232': 4,
  'nvidia-233': 2,
  'nvidia-234': 1,
};
const zero = Object.fromEntries(Object.keys(full).map(k => [k, 0]));

t.test('KubeVirt and the NVIDIA kubevirt device plugin', async t => {
  const kv = await scenario(t, 'kubevirt');

  t.same(
    kv.first.discovered,
    {
      'nvidia-228': { name: 'GRID_T4-8A', parents: [GPU_A, GPU_B] },
      'nvidia-231': { name: 'GRID_T4-2Q', parents: [GPU_A, GPU_B] },
    },
    'glob /sys/class/mdev_bus/*/mdev_supported_types/*: parent = third-from-last, name with spaces → _, match by name or ID',
  );
  t.same(kv.first.in_use, [], 'no parent hosts an mdev yet');
  t.same(
    kv.first.created,
    [
      { parent: GPU_A, type: 'nvidia-231', available_before: 8, writes: Array(8).fill(36), available_after: 0 },
      { parent: GPU_B, type: 'nvidia-228', available_before: 2, writes: Array(2).fill(36), available_after: 0 },
    ],
    'one type per parent; as many O_WRONLY (no O_TRUNC) 36-byte creates as available_instances said, each accepted whole',
  );
  t.same(kv.available_after_first, { [GPU_A]: zero, [GPU_B]: zero }, 'both GPUs full: every type reads 0');

  t.same(kv.second.in_use, [GPU_A, GPU_B], 'raw readlink of bus/mdev/devices/<u>: the parent is the second-to-last component');
  t.same(kv.second.created, [], 'parents hosting mdevs are skipped');

  const dp = kv.device_plugin as Array<Record<string, any>>;
  t.equal(dp.length, 10, 'the device plugin sees all 10 (symlinks only)');
  for (const d of dp) {
    t.match(d.uuid, UUID);
    t.ok(d.link_parts >= 5, 'the readlink has at least 5 components');
    t.match(d.iommu_group, /^\d+$/, 'iommu_group link basename is an integer');
  }
  t.same(
    dp.filter(d => d.parent === GPU_A).map(d => [d.type_name, d.numa_node]),
    Array(8).fill(['GRID_T4-2Q', 0]),
    'GPU A: type from mdev_type/name, numa_node from /sys/bus/pci/devices/<parent>',
  );
  t.same(
    dp.filter(d => d.parent === GPU_B).map(d => [d.type_name, d.numa_node]),
    Array(2).fill(['GRID_T4-8A', 1]),
    'GPU B',
  );
  t.equal(new Set(dp.map(d => d.iommu_group)).size, 10, 'one group per vGPU');

  t.same(
    (kv.nvidia_plugin as Array<Record<string, any>>).map(d => [d.uuid, d.type_name, d.gpu, d.numa_node]),
    dp.map(d => [d.uuid, d.type_name, d.parent, d.numa_node]),
    'filepath.Walk-based listing agrees',
  );

  t.same(
    (kv.removed as Array<Record<string, any>>).map(r => r.write),
    [1, 1],
    'the two undesired T4-8A removed with "1" (O_WRONLY)',
  );
  t.equal(kv.device_plugin_after_remove.length, 8);
  t.same(kv.available_after_remove, { [GPU_A]: zero, [GPU_B]: full }, 'GPU B back to every maximum');
});

t.test('go-nvlib as vgpu-device-manager drives it', async t => {
  const nv = await scenario(t, 'nvlib');
  const gpu = (address: string, iommuGroup: number, numa: number) => ({
    address,
    vendor: 0x10de,
    class: 0x030200,
    device: 0x1eb8,
    driver: 'nvidia',
    iommu_group: iommuGroup,
    numa_node: numa,
    resources: 3,
    is_vf: false,
  });
  t.same(
    nv.gpus,
    [gpu(GPU_A, 36, 0), gpu(GPU_B, 123, 1)],
    'nvpci: vendor, class, device, driver, iommu_group, physfn, numa_node, resource (3 fields a line)',
  );
  const types = ['T4-16A', 'T4-16Q', 'T4-1A', 'T4-1B', 'T4-1Q', 'T4-2A', 'T4-2B', 'T4-2B4', 'T4-2Q', 'T4-4A', 'T4-4Q', 'T4-8A', 'T4-8Q'];
  t.same(
    nv.parents,
    [
      { address: GPU_A, types },
      { address: GPU_B, types },
    ],
    'nvmdev parents through /sys/class/mdev_bus; nvidia-*/name after the first space',
  );

  t.equal(nv.fill_writes.length, 16);
  t.ok(
    (nv.fill_writes as unknown[]).every(w => w === 36),
    'every O_WRONLY|O_SYNC create took all 36 bytes',
  );
  t.same(nv.config_after_fill, [{ 'T4-2Q': 8 }, { 'T4-2Q': 8 }], 'created until available_instances read 0, on every GPU');
  t.same(nv.available_after_fill, { [GPU_A]: zero, [GPU_B]: zero });
  t.same(
    nv.devices,
    { count: 16, drivers: ['nvidia-vgpu-vfio'], types: ['T4-2Q'], groups_are_ints: true, parents: [GPU_A, GPU_B] },
    'EvalSymlinks listing: mdev_type/name, driver and an integer iommu_group on every device',
  );

  t.same(nv.reconfig_writes, [36, 36, 36, 36]);
  t.same(nv.config_after_reconfig, { 'T4-4Q': 4 }, 'clear (remove "1" with O_SYNC) then a new type');
  t.equal(
    nv.overask_error,
    "failed to create 2 T4-16Q vGPU devices on the GPU. ensure '2' does not exceed the maximum supported instances for 'T4-16Q'",
    'asking for more than fits fails as vgpu-device-manager does',
  );
  t.same(nv.overask_writes, [36]);
  t.same(nv.config_after_overask, { 'T4-16Q': 1 });
  t.same(nv.devices_after_clear, []);
  t.same(nv.available_after_clear, { [GPU_A]: full, [GPU_B]: full });
});
