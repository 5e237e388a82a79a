import t from 'tap';
import type { CoreDevice } from '../../src/core/model.js';
import gvtg, { createGvtgPlugin } from '../../examples/intel-gvtg.js';
import { availability, parentOf, typeOf } from '../helpers/core.js';
import { uuid } from '../helpers/util.js';
import { coreWith, description, errnoOf, mdevAttr, parentAttr } from './helpers.js';

const IGPU = '0000:00:02.0';

/**
 * The kernel's arithmetic, written out independently of the plugin:
 * gvt.h HOST_LOW_GM_SIZE 128 MB, HOST_HIGH_GM_SIZE 384 MB, HOST_FENCE 4;
 * vgpu.c vgpu_types[] (low MB, high MB, fences); kvmgt.c intel_vgpu_get_available.
 */
const TABLE: Record<string, [number, number, number]> = {
  GVTg_V5_8: [64, 384, 4],
  GVTg_V5_4: [128, 512, 4],
  GVTg_V5_2: [256, 1024, 4],
  GVTg_V5_1: [512, 2048, 4],
};
class Kernel {
  low: number;
  high: number;
  fences: number;
  constructor(apertureMB = 1024, ggttMB = 4096, fences = 32) {
    this.low = apertureMB - 128;
    this.high = ggttMB - apertureMB - 384;
    this.fences = fences - 4;
  }
  available(type: string): number {
    const [l, h, f] = TABLE[type]!;
    return Math.min(Math.floor(this.low / l), Math.floor(this.high / h), Math.floor(this.fences / f));
  }
  expected(): Record<string, number> {
    return Object.fromEntries(Object.keys(TABLE).map(k => [`i915-${k}`, this.available(k)]));
  }
  take(type: string, sign = 1): void {
    const [l, h, f] = TABLE[type]!;
    this.low -= sign * l;
    this.high -= sign * h;
    this.fences -= sign * f;
  }
}

t.test('the iGPU parent and its four types', async t => {
  const core = await coreWith(gvtg);
  const p = parentOf(core, IGPU);
  t.equal(p.device.path, 'devices/pci0000:00/0000:00:02.0');
  t.equal(p.device.typePrefix, 'i915');
  t.equal(p.device.driver, 'i915');
  t.equal(await parentAttr(p, 'vendor').show!(p), '0x8086\n');
  t.equal(await parentAttr(p, 'class').show!(p), '0x030000\n');
  t.match(await parentAttr(p, 'uevent').show!(p), /^DRIVER=i915\nPCI_CLASS=30000\nPCI_ID=8086:3E92\n/);
  t.same(
    p.types.map(ty => [ty.id, ty.name, ty.deviceApi]),
    [
      ['i915-GVTg_V5_8', 'GVTg_V5_8', 'vfio-pci'],
      ['i915-GVTg_V5_4', 'GVTg_V5_4', 'vfio-pci'],
      ['i915-GVTg_V5_2', 'GVTg_V5_2', 'vfio-pci'],
      ['i915-GVTg_V5_1', 'GVTg_V5_1', 'vfio-pci'],
    ],
  );
  t.equal(p.types[0]!.spec.name, undefined, 'no pretty name');
  t.same(p.types[0]!.spec.legacyAttrs, ['available_instances', 'device_api', 'description'], '4.10: no name file');
  t.equal(
    description(typeOf(core, IGPU, 'i915-GVTg_V5_8')),
    'low_gm_size: 64MB\nhigh_gm_size: 384MB\nfence: 4\nresolution: 1024x768\nweight: 2\n',
  );
  t.equal(
    description(typeOf(core, IGPU, 'i915-GVTg_V5_4')),
    'low_gm_size: 128MB\nhigh_gm_size: 512MB\nfence: 4\nresolution: 1920x1200\nweight: 4\n',
  );
  t.equal(
    description(typeOf(core, IGPU, 'i915-GVTg_V5_2')),
    'low_gm_size: 256MB\nhigh_gm_size: 1024MB\nfence: 4\nresolution: 1920x1200\nweight: 8\n',
  );
  t.equal(
    description(typeOf(core, IGPU, 'i915-GVTg_V5_1')),
    'low_gm_size: 512MB\nhigh_gm_size: 2048MB\nfence: 4\nresolution: 1920x1200\nweight: 16\n',
  );
  t.ok(core.drivers().includes('intel_vgpu_mdev'));
  await core.shutdown();
});

t.test('availability follows the kernel formula after every creation', async t => {
  const core = await coreWith(gvtg);
  const k = new Kernel();
  t.same(availability(core, IGPU), k.expected());
  t.same(availability(core, IGPU), { 'i915-GVTg_V5_8': 7, 'i915-GVTg_V5_4': 5, 'i915-GVTg_V5_2': 2, 'i915-GVTg_V5_1': 1 });

  const plan = ['GVTg_V5_4', 'GVTg_V5_8', 'GVTg_V5_2', 'GVTg_V5_8', 'GVTg_V5_4', 'GVTg_V5_8', 'GVTg_V5_1', 'GVTg_V5_8'];
  const made = [];
  let n = 0;
  for (const type of plan) {
    const ty = typeOf(core, IGPU, `i915-${type}`);
    if (k.available(type) > 0) {
      made.push(await core.create(ty, uuid(++n)));
      k.take(type);
    } else {
      t.equal(await errnoOf(core.create(ty, uuid(100 + n))), 'ENOSPC', `${type} refused when the pool is short`);
    }
    t.same(availability(core, IGPU), k.expected(), `after ${type}`);
  }
  t.ok(made.length >= 4);
  await core.remove(made[1]!);
  k.take('GVTg_V5_8', -1);
  t.same(availability(core, IGPU), k.expected(), 'after a removal');
  await core.shutdown();
});

t.test('intel_vgpu/vgpu_id: lowest free id from 1', async t => {
  const core = await coreWith(gvtg);
  const eight = typeOf(core, IGPU, 'i915-GVTg_V5_8');
  const devs: CoreDevice[] = [];
  for (let i = 1; i <= 3; i++) devs.push(await core.create(eight, uuid(i)));
  const id = (d: CoreDevice) => mdevAttr(d, 'intel_vgpu', 'vgpu_id').show!(d);
  t.same(await Promise.all(devs.map(id)), ['1\n', '2\n', '3\n']);
  await core.remove(devs[1]!);
  const again = await core.create(eight, uuid(9));
  t.equal(await id(again), '2\n', 'the freed id is reused');
  await core.shutdown();
});

t.test('at most 7 vGPUs, even with resources left (GVT_MAX_VGPU)', async t => {
  const core = await coreWith(createGvtgPlugin({ ggttMB: 8192, fences: 64 }));
  const eight = typeOf(core, IGPU, 'i915-GVTg_V5_8');
  t.equal(core.availableInstances(eight), new Kernel(1024, 8192, 64).available('GVTg_V5_8'));
  for (let i = 1; i <= 7; i++) await core.create(eight, uuid(i));
  t.ok(core.availableInstances(eight) > 0, 'the formula still sees room');
  t.equal(await errnoOf(core.create(eight, uuid(8))), 'ENOSPC');
  await core.shutdown();
});

t.test('a 256 MB aperture (a common BIOS default) only fits _8 and _4', async t => {
  const core = await coreWith(createGvtgPlugin({ apertureMB: 256 }));
  t.same(availability(core, IGPU), { 'i915-GVTg_V5_8': 2, 'i915-GVTg_V5_4': 1 });
  const resource = String(await parentAttr(parentOf(core, IGPU), 'resource').show!(parentOf(core, IGPU))).split('\n');
  t.equal(resource[2], '0x0000004000000000 0x000000400fffffff 0x000000000014220c', 'BAR2 is the 256 MB aperture');
  await core.shutdown();
});

t.test('gen 8 (Broadwell) names its types GVTg_V4_*', async t => {
  const core = await coreWith(createGvtgPlugin({ gen: 8 }));
  t.same(
    parentOf(core, IGPU).types.map(ty => ty.id),
    ['i915-GVTg_V4_8', 'i915-GVTg_V4_4', 'i915-GVTg_V4_2', 'i915-GVTg_V4_1'],
  );
  await core.shutdown();
});
