// Vendor attributes of compiled configs: fixed and templated values, writable
// ones (a store replaces the value for that device only), modes, groups, and
// the parent's identity files. Read through the plugin API the sysfs tree uses.
import t from 'tap';
import type { Attribute, AttributeGroup } from '../../src/core/api.js';
import { compileParent } from '../../src/config/compile.js';
import { availability, parentOf, typeOf } from '../helpers/core.js';
import { createN, fixture, freshUuid, loaded } from './helpers.js';
import { storeAttribute } from '../../src/core/plugin-call.js';

function find<C>(groups: readonly AttributeGroup<C>[] | undefined, key: string): Attribute<C> {
  const slash = key.indexOf('/');
  const group = slash < 0 ? undefined : key.slice(0, slash);
  const name = slash < 0 ? key : key.slice(slash + 1);
  const a = groups?.find(g => g.name === group)?.attrs.find(x => x.name === name);
  if (!a) throw new Error(`no attribute ${key}`);
  return a;
}
const show = async <C>(a: Attribute<C>, ctx: C): Promise<string> => {
  if (!a.show) throw new Error(`${a.name} has no show`);
  return String(await a.show(ctx));
};

t.test('parent identity files, with {parent}', async t => {
  const core = await loaded(await fixture('t4-host.json'));
  const p = parentOf(core, '0000:3b:00.0');
  t.equal(p.device.path, 'devices/pci0000:3a/0000:3a:00.0/0000:3b:00.0');
  t.equal(p.device.typePrefix, 'nvidia');
  t.same(p.device.subsystem, { bus: 'pci' });
  t.equal(p.device.driver, 'nvidia');
  t.equal(p.device.iommuGroup, 36);
  t.equal(p.ops.driver, 'nvidia-vgpu-vfio');
  t.equal(await show(find(p.device.attrs, 'vendor'), p), '0x10de\n');
  t.equal(await show(find(p.device.attrs, 'class'), p), '0x030200\n');
  t.match(await show(find(p.device.attrs, 'uevent'), p), /\nPCI_SLOT_NAME=0000:3b:00\.0\n/);
  t.equal(find(p.device.attrs, 'vendor').store, undefined, 'a plain string is read-only');
  t.equal(find(p.device.attrs, 'vendor').mode, undefined, 'and gets the core default mode');
});

t.test('types: names, descriptions, device_api, legacyAttrs, extra files', async t => {
  const core = await loaded(await fixture('t4-host.json'));
  const ty = typeOf(core, '0000:3b:00.0', 'nvidia-222');
  t.equal(ty.name, 'GRID T4-1B');
  t.equal(ty.deviceApi, 'vfio-pci');
  t.equal(ty.spec.description, 'num_heads=4, frl_config=45, framebuffer=1024M, max_resolution=5120x2880, max_instance=16\n');

  const gvt = await loaded(await fixture('gvtg-host.json'));
  const g = typeOf(gvt, '0000:00:02.0', 'i915-GVTg_V5_4');
  t.equal(g.name, 'GVTg_V5_4', 'no pretty name: the name file falls back to the id');
  t.equal(g.spec.name, undefined);
  t.same(g.spec.legacyAttrs, ['description', 'device_api', 'available_instances']);

  const s390 = await loaded(await fixture('s390-host.json'));
  t.equal(typeOf(s390, 'matrix', 'vfio_ap-passthrough').deviceApi, 'vfio-ap', 'parent deviceApi');
  t.equal(typeOf(s390, '0.0.0313', 'vfio_ccw-io').name, 'I/O subchannel (Non-QDIO)');
  t.equal(typeOf(s390, '0.0.0313', 'vfio_ccw-io').spec.description, undefined, 'no description file');

  const mtty = await loaded(await fixture('mtty-fixed.json'));
  const m2 = typeOf(mtty, 'mtty', 'mtty-2');
  const ports = m2.spec.attrs?.find(a => a.name === 'ports');
  t.ok(ports, 'a type attribute');
  t.equal(await show(ports!, m2), '2\n');
  t.equal(typeOf(mtty, 'mtty', 'mtty-1').spec.attrs, undefined);
});

t.test('device attributes: {uuid} template, writable per device', async t => {
  const core = await loaded(await fixture('mtty-fixed.json'));
  const p = parentOf(core, 'mtty');
  const [d1, d2] = await createN(core, typeOf(core, 'mtty', 'mtty-2'), 2);
  const sample = find(p.ops.mdevAttrGroups, 'vendor/sample_mdev_dev');
  t.equal(await show(sample, d1!), `This is MDEV ${d1!.uuid}\n`);
  t.equal(await show(sample, d2!), `This is MDEV ${d2!.uuid}\n`);
  t.equal(sample.store, undefined);

  const t4 = await loaded(await fixture('t4-host.json'));
  const tp = parentOf(t4, '0000:3b:00.0');
  const [v1, v2] = await createN(t4, typeOf(t4, '0000:3b:00.0', 'nvidia-222'), 2);
  const params = find(tp.ops.mdevAttrGroups, 'nvidia/vgpu_params');
  t.equal(await show(params, v1!), '');
  await storeAttribute(params, v1!, 'frame_rate_limiter=0\n');
  t.equal(await show(params, v1!), 'frame_rate_limiter=0\n', 'a store replaces the value with what was written');
  t.equal(await show(params, v2!), '', 'for that device only');
  await t4.remove(v1!);
  const [v3] = await createN(t4, typeOf(t4, '0000:3b:00.0', 'nvidia-222'), 1);
  t.equal(await show(params, v3!), '', 'a new device starts from the template');
});

t.test('write-only and read-only modes (vfio_ap)', async t => {
  const core = await loaded(await fixture('s390-host.json'));
  const p = parentOf(core, 'matrix');
  const [d] = await createN(core, typeOf(core, 'matrix', 'vfio_ap-passthrough'), 1);
  const assign = find(p.ops.mdevAttrGroups, 'assign_adapter');
  t.equal(assign.mode, 0o200);
  t.equal(assign.show, undefined, 'no read bit: no show');
  t.equal(typeof assign.store, 'function');
  await storeAttribute(assign, d!, '5\n');
  const matrix = find(p.ops.mdevAttrGroups, 'matrix');
  t.equal(await show(matrix, d!), '');
  t.equal(matrix.store, undefined);
  t.equal(parentOf(core, '0.0.0313').ops.mdevAttrGroups, undefined, 'a parent without deviceAttrs has none');
});

t.test('{index} and {index1}: lowest free slot per parent, reused after a remove', async t => {
  const core = await loaded(await fixture('gvtg-host.json'));
  const p = parentOf(core, '0000:00:02.0');
  const id = find(p.ops.mdevAttrGroups, 'intel_vgpu/vgpu_id');
  const devs = await createN(core, typeOf(core, '0000:00:02.0', 'i915-GVTg_V5_8'), 3);
  t.same(await Promise.all(devs.map(d => show(id, d))), ['1\n', '2\n', '3\n']);
  await core.remove(devs[1]!);
  const [again] = await createN(core, typeOf(core, '0000:00:02.0', 'i915-GVTg_V5_4'), 1);
  t.equal(await show(id, again!), '2\n');
});

t.test('every placeholder, escapes, and modes', async t => {
  const doc = {
    parents: [
      {
        path: 'devices/platform/acme.0',
        typePrefix: 'acme',
        driver: 'acme_mdev',
        deviceApi: 'vfio-platform',
        attrs: { ident: '{parent}|{path}|{prefix}|{{literal}}\n' },
        capacity: { model: 'fixed' },
        types: [
          {
            id: 'small',
            name: 'Acme Small',
            max: 4,
            attrs: { info: '{type}|{type_id}|{type_name}|{device_api}|{parent}\n', knob: { value: 'k\n', writable: true } },
          },
        ],
        deviceAttrs: {
          all: '{uuid}|{type}|{type_id}|{type_name}|{device_api}|{parent}|{path}|{prefix}|{index}|{index1}|{{}}\n',
          'ctl/rw': { value: 'x', mode: '0664' },
          'ctl/ro600': { value: 'secret', mode: '0600', writable: true },
          'ctl/root-only': { value: 'r', mode: '0400' },
        },
      },
    ],
  };
  const core = await loaded(doc);
  const p = parentOf(core, 'acme.0');
  t.equal(await show(find(p.device.attrs, 'ident'), p), 'acme.0|devices/platform/acme.0|acme|{literal}\n');
  const ty = typeOf(core, 'acme.0', 'acme-small');
  const info = ty.spec.attrs!.find(a => a.name === 'info')!;
  t.equal(await show(info, ty), 'acme-small|small|Acme Small|vfio-platform|acme.0\n');
  const knob = ty.spec.attrs!.find(a => a.name === 'knob')!;
  await storeAttribute(knob, ty, 'k2\n');
  t.equal(await show(knob, ty), 'k2\n', 'a writable type attribute');

  const u = freshUuid();
  const d = await core.create(ty, u);
  t.equal(
    await show(find(p.ops.mdevAttrGroups, 'all'), d),
    `${u}|acme-small|small|Acme Small|vfio-platform|acme.0|devices/platform/acme.0|acme|0|1|{}\n`,
  );
  const rw = find(p.ops.mdevAttrGroups, 'ctl/rw');
  t.equal(rw.mode, 0o664);
  t.equal(typeof rw.store, 'function', 'a mode with a write bit makes it writable');
  const ro600 = find(p.ops.mdevAttrGroups, 'ctl/ro600');
  t.equal(ro600.mode, 0o600);
  const rootOnly = find(p.ops.mdevAttrGroups, 'ctl/root-only');
  t.equal(rootOnly.mode, 0o400);
  t.equal(rootOnly.store, undefined);
  t.equal(await show(rootOnly, d), 'r');
  t.same(
    p.ops.mdevAttrGroups!.map(g => [g.name, g.attrs.map(a => a.name)]),
    [
      [undefined, ['all']],
      ['ctl', ['rw', 'ro600', 'root-only']],
    ],
  );
});

t.test('legacy parent attributes (devAttrs)', async t => {
  const { ops } = compileParent({
    path: 'devices/virtual/mtty/mtty',
    typePrefix: 'mtty',
    driver: 'mtty',
    capacity: { model: 'fixed' },
    types: [{ id: '1', max: 1 }],
    devAttrs: { 'mtty_dev/sample_mtty_dev': 'This is phy device\n' },
  });
  const a = find(ops.devAttrGroups, 'mtty_dev/sample_mtty_dev');
  t.equal(await a.show!(undefined as never), 'This is phy device\n');
  const core = await loaded(
    {
      parents: [
        {
          path: 'devices/virtual/mtty/mtty',
          typePrefix: 'mtty',
          driver: 'mtty',
          capacity: { model: 'fixed' },
          types: [{ id: '1', max: 1 }],
          devAttrs: { 'mtty_dev/sample_mtty_dev': 'This is phy device\n' },
        },
      ],
    },
    { profile: 'legacy' },
  );
  t.same(availability(core, 'mtty'), { 'mtty-1': 1 });
});
