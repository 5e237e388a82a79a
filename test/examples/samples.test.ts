import t from 'tap';
import samples from '../../examples/samples.js';
import mdpy from '../../examples/mdpy.js';
import mbochs from '../../examples/mbochs.js';
import { availability, parentOf, typeOf } from '../helpers/core.js';
import { uuid } from '../helpers/util.js';
import { coreWith, description, errnoOf, mdevAttr } from './helpers.js';

t.test('samples.ts loads the three kernel samples', async t => {
  const core = await coreWith(samples);
  t.same([...core.parents()].map(p => p.device.path).sort(), [
    'devices/virtual/mbochs/mbochs',
    'devices/virtual/mdpy/mdpy',
    'devices/virtual/mtty/mtty',
  ]);
  t.same([...core.drivers()].sort(), ['mbochs', 'mdpy', 'mtty']);
  await core.shutdown();
});

t.test('mdpy: three types, names = directory names, descriptions', async t => {
  const core = await coreWith(mdpy);
  const p = parentOf(core, 'mdpy');
  t.same(
    p.types.map(ty => [ty.id, ty.name, description(ty)]),
    [
      ['mdpy-vga', 'mdpy-vga', 'virtual display, 640x480 framebuffer\n'],
      ['mdpy-xga', 'mdpy-xga', 'virtual display, 1024x768 framebuffer\n'],
      ['mdpy-hd', 'mdpy-hd', 'virtual display, 1920x1080 framebuffer\n'],
    ],
  );
  t.ok(p.types.every(ty => ty.deviceApi === 'vfio-pci'));
  await core.shutdown();
});

t.test('mdpy: one core counter of 4 across all types, then EUSERS', async t => {
  const core = await coreWith(mdpy);
  t.same(availability(core, 'mdpy'), { 'mdpy-vga': 4, 'mdpy-xga': 4, 'mdpy-hd': 4 });
  const vga = await core.create(typeOf(core, 'mdpy', 'mdpy-vga'), uuid(1));
  t.same(availability(core, 'mdpy'), { 'mdpy-vga': 3, 'mdpy-xga': 3, 'mdpy-hd': 3 });
  const hd = await core.create(typeOf(core, 'mdpy', 'mdpy-hd'), uuid(2));
  await core.create(typeOf(core, 'mdpy', 'mdpy-xga'), uuid(3));
  await core.create(typeOf(core, 'mdpy', 'mdpy-hd'), uuid(4));
  t.same(availability(core, 'mdpy'), { 'mdpy-vga': 0, 'mdpy-xga': 0, 'mdpy-hd': 0 });
  for (const id of ['mdpy-vga', 'mdpy-xga', 'mdpy-hd']) {
    t.equal(await errnoOf(core.create(typeOf(core, 'mdpy', id), uuid(99))), 'EUSERS', id);
  }
  t.equal(await mdevAttr(vga, 'vendor', 'resolution').show!(vga), '640x480\n');
  t.equal(await mdevAttr(hd, 'vendor', 'resolution').show!(hd), '1920x1080\n');
  await core.remove(hd);
  t.same(availability(core, 'mdpy'), { 'mdpy-vga': 1, 'mdpy-xga': 1, 'mdpy-hd': 1 });
  await core.shutdown();
});

t.test('mdpy legacy profile: its own count, ENOMEM', async t => {
  const core = await coreWith(mdpy, 'legacy');
  for (let i = 1; i <= 4; i++) await core.create(typeOf(core, 'mdpy', 'mdpy-xga'), uuid(i));
  t.same(availability(core, 'mdpy'), { 'mdpy-vga': 0, 'mdpy-xga': 0, 'mdpy-hd': 0 });
  t.equal(await errnoOf(core.create(typeOf(core, 'mdpy', 'mdpy-vga'), uuid(5))), 'ENOMEM');
  await core.shutdown();
});

t.test('mbochs: 256 MB pool, 64/16/4, ENOSPC', async t => {
  const core = await coreWith(mbochs);
  const p = parentOf(core, 'mbochs');
  t.same(
    p.types.map(ty => [ty.id, ty.name, description(ty)]),
    [
      ['mbochs-small', 'mbochs-small', 'virtual display, 4 MB video memory\n'],
      ['mbochs-medium', 'mbochs-medium', 'virtual display, 16 MB video memory\n'],
      ['mbochs-large', 'mbochs-large', 'virtual display, 64 MB video memory\n'],
    ],
  );
  const avail = () => availability(core, 'mbochs');
  const create = (id: string, n: number) => core.create(typeOf(core, 'mbochs', `mbochs-${id}`), uuid(n));
  t.same(avail(), { 'mbochs-small': 64, 'mbochs-medium': 16, 'mbochs-large': 4 });

  const large = await create('large', 1);
  t.same(avail(), { 'mbochs-small': 48, 'mbochs-medium': 12, 'mbochs-large': 3 });
  const medium = await create('medium', 2);
  const small = await create('small', 3); // 84 MB used
  t.same(avail(), { 'mbochs-small': 43, 'mbochs-medium': 10, 'mbochs-large': 2 });
  t.equal(await mdevAttr(large, 'vendor', 'memory').show!(large), '64 MB\n');
  t.equal(await mdevAttr(medium, 'vendor', 'memory').show!(medium), '16 MB\n');
  t.equal(await mdevAttr(small, 'vendor', 'memory').show!(small), '4 MB\n');

  await create('large', 4);
  await create('large', 5); // 212 MB used
  t.same(avail(), { 'mbochs-small': 11, 'mbochs-medium': 2, 'mbochs-large': 0 });
  t.equal(await errnoOf(create('large', 6)), 'ENOSPC');
  await create('medium', 7);
  await create('medium', 8); // 244 MB used
  t.same(avail(), { 'mbochs-small': 3, 'mbochs-medium': 0, 'mbochs-large': 0 });
  t.equal(await errnoOf(create('medium', 9)), 'ENOSPC');

  await core.remove(large); // 180 MB used
  t.same(avail(), { 'mbochs-small': 19, 'mbochs-medium': 4, 'mbochs-large': 1 });
  await core.shutdown();
});
