import t from 'tap';
import nvidia, { createNvidiaPlugin } from '../../examples/nvidia-vgpu.js';
import { availability, parentOf, typeOf } from '../helpers/core.js';
import { uuid } from '../helpers/util.js';
import { coreWith, description, errnoOf, mdevAttr, parentAttr } from './helpers.js';
import { storeAttribute } from '../../src/core/plugin-call.js';

const GPU0 = '0000:3b:00.0';
const GPU1 = '0000:d8:00.0';

/** Every type's maximum, from its description's max_instance. */
function maxima(core: Awaited<ReturnType<typeof coreWith>>, gpu: string): Record<string, number> {
  return Object.fromEntries(parentOf(core, gpu).types.map(ty => [ty.id, Number(/max_instance=(\d+)/.exec(description(ty)!)![1])]));
}

t.test('two T4 parents with PCI identities the NVIDIA tools accept', async t => {
  const core = await coreWith(nvidia);
  t.same(
    [...core.parents()].map(p => p.name),
    [GPU0, GPU1],
  );
  const p = parentOf(core, GPU0);
  t.equal(p.device.path, 'devices/pci0000:3a/0000:3a:00.0/0000:3b:00.0');
  t.equal(p.device.typePrefix, 'nvidia');
  t.equal(p.device.driver, 'nvidia');
  t.same(p.device.subsystem, { bus: 'pci' });
  t.type(p.device.iommuGroup, 'number');
  const show = async (name: string) => String(await parentAttr(p, name).show!(p));
  t.equal(await show('vendor'), '0x10de\n');
  t.equal(await show('device'), '0x1eb8\n');
  t.equal(await show('subsystem_vendor'), '0x10de\n');
  t.equal(await show('subsystem_device'), '0x12a2\n');
  t.equal(await show('class'), '0x030200\n');
  t.equal(await show('numa_node'), '0\n');
  t.equal(await parentAttr(parentOf(core, GPU1), 'numa_node').show!(parentOf(core, GPU1)), '1\n');
  t.equal(
    await show('uevent'),
    'DRIVER=nvidia\nPCI_CLASS=30200\nPCI_ID=10DE:1EB8\nPCI_SUBSYS_ID=10DE:12A2\nPCI_SLOT_NAME=0000:3b:00.0\n' +
      'MODALIAS=pci:v000010DEd00001EB8sv000010DEsd000012A2bc03sc02i00\n',
  );
  const resource = (await show('resource')).split('\n');
  t.equal(resource.length, 14, '13 lines and the final newline');
  t.ok(resource.slice(0, 13).every(l => /^0x[0-9a-f]{16} 0x[0-9a-f]{16} 0x[0-9a-f]{16}$/.test(l)));
  t.equal(resource[0], '0x00000000ab000000 0x00000000abffffff 0x0000000000040200', 'BAR0: 16 MB, 32-bit');
  t.equal(resource[1], '0x0000381fe0000000 0x0000381fefffffff 0x000000000014220c', 'BAR1: 256 MB, 64-bit prefetchable');
  t.equal(resource[2], '0x0000000000000000 0x0000000000000000 0x0000000000000000');
  t.throws(() => parentAttr(p, 'sriov_totalvfs'), 'Turing has no SR-IOV');
  await core.shutdown();
});

t.test('T4 types, names and one-line descriptions', async t => {
  const core = await coreWith(nvidia);
  const ty = typeOf(core, GPU0, 'nvidia-222');
  t.equal(ty.name, 'GRID T4-1B');
  t.equal(ty.deviceApi, 'vfio-pci');
  t.equal(description(ty), 'num_heads=4, frl_config=45, framebuffer=1024M, max_resolution=5120x2880, max_instance=16\n');
  t.equal(typeOf(core, GPU0, 'nvidia-223').name, 'GRID T4-2B');
  t.equal(typeOf(core, GPU0, 'nvidia-224').name, 'GRID T4-2B4');
  t.equal(typeOf(core, GPU0, 'nvidia-228').name, 'GRID T4-8A');
  t.equal(
    description(typeOf(core, GPU0, 'nvidia-229')),
    'num_heads=1, frl_config=60, framebuffer=16384M, max_resolution=1280x1024, max_instance=1\n',
  );
  t.equal(typeOf(core, GPU0, 'nvidia-231').name, 'GRID T4-2Q');
  t.equal(
    description(typeOf(core, GPU0, 'nvidia-230')),
    'num_heads=4, frl_config=60, framebuffer=1024M, max_resolution=5120x2880, max_instance=16\n',
  );
  t.same(availability(core, GPU0), maxima(core, GPU0), 'every type starts at its max_instance');
  t.equal(core.availableInstances(typeOf(core, GPU0, 'nvidia-223')), 8);
  t.ok(
    parentOf(core, GPU0).types.every(x => description(x)!.split('\n').length === 2),
    'one line each',
  );
  t.ok(core.drivers().includes('nvidia-vgpu-vfio'));
  await core.shutdown();
});

t.test('one type per GPU: the others read 0 until the last vGPU goes', async t => {
  const core = await coreWith(nvidia);
  const max0 = maxima(core, GPU0);
  const oneB = typeOf(core, GPU0, 'nvidia-222');
  const first = await core.create(oneB, uuid(1));
  const after = availability(core, GPU0);
  for (const [id, n] of Object.entries(after)) t.equal(n, id === 'nvidia-222' ? 15 : 0, id);
  t.same(availability(core, GPU1), maxima(core, GPU1), 'the other GPU is unaffected');

  t.equal(await errnoOf(core.create(typeOf(core, GPU0, 'nvidia-231'), uuid(2))), 'EINVAL', 'mixed types refused');
  const second = await core.create(oneB, uuid(3));
  t.equal(core.availableInstances(oneB), 14);
  await core.create(typeOf(core, GPU1, 'nvidia-234'), uuid(4)); // T4-16Q fills GPU1
  t.equal(core.availableInstances(typeOf(core, GPU1, 'nvidia-234')), 0);
  t.equal(core.availableInstances(typeOf(core, GPU1, 'nvidia-222')), 0);

  await core.remove(first);
  t.equal(core.availableInstances(oneB), 15);
  t.equal(core.availableInstances(typeOf(core, GPU0, 'nvidia-231')), 0, 'still one T4-1B running');
  await core.remove(second);
  t.same(availability(core, GPU0), max0, 'every maximum restored');
  t.equal(await errnoOf(core.create(typeOf(core, GPU0, 'nvidia-231'), uuid(5))), undefined, 'now T4-2Q may start');
  await core.shutdown();
});

t.test('framebuffer exhaustion: the 17th T4-1B fails with ENOSPC', async t => {
  const core = await coreWith(nvidia);
  const oneB = typeOf(core, GPU0, 'nvidia-222');
  for (let i = 1; i <= 16; i++) await core.create(oneB, uuid(i));
  t.equal(core.availableInstances(oneB), 0);
  t.equal(await errnoOf(core.create(oneB, uuid(17))), 'ENOSPC');
  await core.shutdown();
});

t.test('nvidia/vgpu_params', async t => {
  const core = await coreWith(nvidia);
  const dev = await core.create(typeOf(core, GPU0, 'nvidia-231'), uuid(1));
  const attr = mdevAttr(dev, 'nvidia', 'vgpu_params');
  t.equal(attr.mode, 0o644);
  t.equal(await attr.show!(dev), '\n');
  await storeAttribute(attr, dev, 'frame_rate_limiter=0\n');
  t.equal(await attr.show!(dev), 'frame_rate_limiter=0\n');
  await storeAttribute(attr, dev, 'frame_rate_limiter=0,enable_uvm=1');
  t.equal(await attr.show!(dev), 'frame_rate_limiter=0,enable_uvm=1\n');
  for (const bad of ['frame_rate_limiter', 'frame_rate_limiter=', '=1', 'a=1,,b=2', 'a=1 b=2', 'a=b=c', 'a=1,']) {
    t.equal(await errnoOf(() => storeAttribute(attr, dev, bad)), 'EINVAL', JSON.stringify(bad));
  }
  t.equal(await attr.show!(dev), 'frame_rate_limiter=0,enable_uvm=1\n', 'a rejected write changes nothing');
  await storeAttribute(attr, dev, ' \n');
  t.equal(await attr.show!(dev), '\n', 'a blank write clears');

  const h = await core.vfio.open(uuid(1));
  t.equal(await errnoOf(() => storeAttribute(attr, dev, 'frame_rate_limiter=1')), 'EBUSY', 'not while the VM runs');
  await h.close();
  await storeAttribute(attr, dev, 'frame_rate_limiter=1');
  await core.shutdown();
});

t.test('createNvidiaPlugin({ gpus })', async t => {
  const core = await coreWith(createNvidiaPlugin({ gpus: 4 }));
  t.equal([...core.parents()].length, 4);
  t.same(
    [...core.parents()].map(p => parentAttr(p, 'numa_node').show!(p)),
    ['0\n', '1\n', '0\n', '1\n'],
  );
  await core.shutdown();
  t.throws(() => createNvidiaPlugin({ gpus: 0 }), RangeError);
  t.throws(() => createNvidiaPlugin({ gpus: 7 }), RangeError);
});
