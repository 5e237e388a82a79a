// The NVIDIA SR-IOV examples in memory: examples/nvidia-vgpu17.ts's nvidia/
// files (creatable_vgpu_types shrinking and growing back, current_vgpu_type,
// placement_id, gpu_instance_id, vgpu_params and their errnos, the choices of
// nvidia-choices.ts) and examples/nvidia-ampere.ts's per-VF availability.
import t from 'tap';
import { createVgpu17Plugin } from '../../examples/nvidia-vgpu17.js';
import { createAmperePlugin } from '../../examples/nvidia-ampere.js';
import type { Attribute, PciDevice } from '../../src/core/api.js';
import { storeAttribute } from '../../src/core/plugin-call.js';
import { uuid } from '../helpers/util.js';
import { coreWith, errnoOf } from './helpers.js';

const PF = '0000:41:00.0';

t.test('vGPU 17: the nvidia/ files of the VFs', async t => {
  const core = await coreWith(createVgpu17Plugin({ numVfs: 4 }));
  const vfs = core.pciDevice(PF)!.virtfns;
  t.same(
    vfs.map(v => v.name),
    ['0000:41:00.4', '0000:41:00.5', '0000:41:00.6', '0000:41:00.7'],
  );
  t.same([...core.parents()], [], 'no mdev parent at all');
  const attr = (vf: PciDevice, name: string): Attribute<PciDevice> =>
    core
      .pciDevice(vf.name)!
      .driverAttrs.flatMap(g => g.attrs)
      .find(a => a.name === name)!;
  const show = async (vf: PciDevice, name: string) => String(await attr(vf, name).show!(vf));
  const store = (vf: PciDevice, name: string, v: string) => errnoOf(storeAttribute(attr(vf, name), vf, Buffer.from(v), 1000, name));
  const ids = async (vf: PciDevice) => [...(await show(vf, 'creatable_vgpu_types')).matchAll(/^(\d+) +: /gm)].map(m => Number(m[1]));
  const [a, b, c, d] = vfs as [PciDevice, PciDevice, PciDevice, PciDevice];

  t.equal((await show(a, 'creatable_vgpu_types')).split('\n')[0], 'ID    : vGPU Name', 'the header');
  t.match(await show(a, 'creatable_vgpu_types'), /^1147 {2}: NVIDIA L40S-1Q$/m, 'id padded to 6, then ": name"');
  t.same(await ids(a), [1147, 1148, 1149, 1150, 1151, 1152, 1153, 1154, 1155, 1159]);
  t.equal(await show(a, 'current_vgpu_type'), '0\n');
  t.equal(await show(a, 'placement_id'), 'Not Applicable\n');
  t.equal(await store(a, 'vgpu_params', 'frame_rate_limiter=0'), 'EINVAL', 'vgpu_params without a vGPU');

  t.equal(await store(a, 'current_vgpu_type', '1153\n'), undefined, 'create L40S-12Q');
  t.equal(await show(a, 'current_vgpu_type'), '1153\n');
  t.same(await ids(a), [], 'the VF holding it lists nothing');
  t.same(await ids(b), [1153], 'a sibling: only the 12 GB size (equal-size mode)');
  t.equal(await store(b, 'current_vgpu_type', '1147'), 'EINVAL', 'another size: not creatable');
  t.equal(await store(a, 'current_vgpu_type', '1153'), 'EBUSY', 'a second vGPU on one VF');
  t.equal(await store(b, 'current_vgpu_type', 'x'), 'EINVAL', 'not a number');
  t.equal(await store(b, 'placement_id', '0'), undefined, 'ask for slot 0 (taken)');
  t.equal(await show(b, 'placement_id'), '0\n');
  t.equal(await store(b, 'current_vgpu_type', '1153'), 'EINVAL', 'the requested slot is taken');
  t.equal(await store(b, 'placement_id', '3'), undefined);
  t.equal(await store(b, 'current_vgpu_type', '1153'), undefined);
  t.equal(await show(b, 'placement_id'), '3\n', 'the requested slot');
  t.equal(await store(b, 'placement_id', '1'), 'EBUSY', 'placement while it holds a vGPU');
  t.equal(await store(c, 'current_vgpu_type', '1153'), undefined);
  t.equal(await show(c, 'placement_id'), '1\n', 'the lowest free slot');
  t.equal(await store(d, 'current_vgpu_type', '1153'), undefined);
  t.same(await ids(vfs[0]!), [], 'four 12 GB vGPUs fill 48 GB');
  t.equal(await store(a, 'vgpu_params', 'frame_rate_limiter=0\n'), undefined);
  t.equal(await show(a, 'vgpu_params'), 'frame_rate_limiter=0\n');
  t.equal(await show(a, 'gpu_instance_id'), 'Not Applicable\n');
  t.equal(await store(a, 'gpu_instance_id', '1'), 'EINVAL', 'no MIG on an L40S');
  t.equal(await errnoOf(core.setNumVfs(core.pciDevice(PF)!, 0)), 'EBUSY', 'sriov_numvfs 0 refused while vGPUs exist');

  for (const vf of [b, c, d]) t.equal(await store(vf, 'current_vgpu_type', '0'), undefined);
  t.same(await ids(b), [1153], 'one left: still only its size');
  t.equal(await store(a, 'current_vgpu_type', '0\n'), undefined);
  t.equal(await show(a, 'vgpu_params'), '\n', 'destroyed: parameters gone');
  t.same(await ids(b), [1147, 1148, 1149, 1150, 1151, 1152, 1153, 1154, 1155, 1159], 'every type creatable again');
  t.equal(await store(a, 'current_vgpu_type', '0'), undefined, '0 on a free VF does nothing');
  t.equal(await errnoOf(core.setNumVfs(core.pciDevice(PF)!, 0)), undefined);
});

t.test('Ampere: each VF offers 0 or 1 of the running type', async t => {
  const core = await coreWith(createAmperePlugin({ numVfs: 8 }));
  const vfs = core.pciDevice(PF)!.virtfns.map(v => core.parent(v.name)!);
  t.equal(vfs.length, 8);
  const type = (i: number, id: number) => vfs[i]!.types.find(ty => ty.id === `nvidia-${id}`)!;
  t.same(
    vfs.map((_, i) => core.availableInstances(type(i, 597))),
    Array(8).fill(1),
    'A10-24Q: 1 on every VF before any exists',
  );
  await core.create(type(0, 597), uuid(1));
  t.same(
    vfs.map((_, i) => core.availableInstances(type(i, 597))),
    Array(8).fill(0),
    'one A10-24Q fills the GPU: 0 everywhere',
  );
  t.equal(await errnoOf(core.create(type(1, 597), uuid(2))), 'ENOSPC', 'past max_instance');
  t.equal(await errnoOf(core.create(type(1, 590), uuid(3))), 'EINVAL', 'another type while A10-24Q runs');
  t.equal(await errnoOf(core.create(type(0, 597), uuid(4))), 'ENOSPC', 'a second vGPU on the VF');
  await core.remove(core.device(uuid(1))!);
  t.same(
    vfs.map((_, i) => core.availableInstances(type(i, 590))),
    Array(8).fill(1),
    'removed: every VF offers every type again',
  );
});
