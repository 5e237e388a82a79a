// mdevfs capture: read an mdev tree and write a config that reproduces it.
// 1. A plain-file fake /sys laid out as the kernel does (relative links as in
//    docs/abi.md#layout and #link-targets) → captureSysfs → the exact expected document →
//    compiled and loaded into MdevCore → the same parents, types, names,
//    descriptions, device_api, availability and identity files.
// 2. mdevfs's own tree (the sysfs presenter over a core loaded from each
//    fixture, written out to plain files) → capture → mount the capture → the
//    same tree again.
import t from 'tap';
import { chmod, lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { captureSysfs, compileConfig, ConfigError, formatConfig, parseConfig, validateConfig } from '../../src/config/index.js';
import type { ConfigDoc } from '../../src/config/types.js';
import { MdevCore } from '../../src/core/core.js';
import { SysfsPresenter } from '../../src/sysfs/presenter.js';
import { KAttr, KDir, KLink } from '../../src/kernfs/index.js';
import type { Attribute, AttributeGroup, Parent } from '../../src/core/api.js';
import { availability, parentOf } from '../helpers/core.js';
import { fixture, freshUuid, loaded } from './helpers.js';

const tmp = await mkdtemp(join(tmpdir(), 'mdevfs-capture-'));
t.teardown(() => rm(tmp, { recursive: true, force: true }));
let n = 0;
const freshRoot = async (): Promise<string> => {
  const r = join(tmp, `sys${++n}`);
  await mkdir(r);
  return r;
};

// ---------------------------------------------------------------------------
// A fake /sys, by hand

class FakeSys {
  constructor(readonly root: string) {}
  async file(path: string, content: string, mode = 0o444): Promise<void> {
    const p = join(this.root, path);
    await mkdir(dirname(p), { recursive: true });
    await writeFile(p, content);
    await chmod(p, mode);
  }
  async dir(path: string): Promise<void> {
    await mkdir(join(this.root, path), { recursive: true });
  }
  /** A symlink with the literal (relative) target text the kernel would give it. */
  async link(path: string, target: string): Promise<void> {
    const p = join(this.root, path);
    await mkdir(dirname(p), { recursive: true });
    await symlink(target, p);
  }
}

const T4 = 'devices/pci0000:3a/0000:3a:00.0/0000:3b:00.0';
const MTTY = 'devices/virtual/mtty/mtty';
const GVT = 'devices/pci0000:00/0000:00:02.0';
const CCW = 'devices/css0/0.0.0313';
const DEV = '3b7e2f9c-8d0a-4c55-9e1f-0123456789ab';
const T4_DESC = 'num_heads=4, frl_config=45, framebuffer=1024M, max_resolution=5120x2880, max_instance=16\n';
const GVT_DESC = 'low_gm_size: 128MB\nhigh_gm_size: 512MB\nfence: 4\nresolution: 1920x1200\nweight: 4\n';

async function buildFakeSys(root: string): Promise<void> {
  const s = new FakeSys(root);
  await s.dir('bus/mdev/devices');
  await s.dir('kernel/iommu_groups/36/devices');
  await s.dir('kernel/iommu_groups/7/devices');

  // An NVIDIA T4 (PCI, driver nvidia) running one vGPU of type 222.
  await s.link('class/mdev_bus/0000:3b:00.0', '../../devices/pci0000:3a/0000:3a:00.0/0000:3b:00.0');
  await s.link(`${T4}/subsystem`, '../../../../bus/pci');
  await s.link(`${T4}/driver`, '../../../../bus/pci/drivers/nvidia');
  await s.link(`${T4}/iommu_group`, '../../../../kernel/iommu_groups/36');
  await s.file(`${T4}/vendor`, '0x10de\n');
  await s.file(`${T4}/device`, '0x1eb8\n');
  await s.file(`${T4}/class`, '0x030200\n');
  await s.file(`${T4}/subsystem_vendor`, '0x10de\n');
  await s.file(`${T4}/subsystem_device`, '0x12a2\n');
  await s.file(`${T4}/numa_node`, '0\n', 0o644);
  await s.file(`${T4}/uevent`, 'DRIVER=nvidia\nPCI_SLOT_NAME=0000:3b:00.0\nX={not a template}\n', 0o644);
  await writeFile(join(root, T4, 'config'), Buffer.from([0xde, 0x10, 0xb8, 0x1e, 0x07, 0x05, 0x10, 0x00]));
  await writeFile(join(root, T4, 'resource0'), 'mmap only, never read');
  await s.file(`${T4}/remove`, '', 0o200);
  await s.file(`${T4}/resource`, '0x00000000ab000000 0x00000000abffffff 0x0000000000040200\n');
  await s.file(`${T4}/label`, 'x'.repeat(5000));
  await s.dir(`${T4}/power`);
  const types: Array<[string, string, number]> = [
    ['222', 'GRID T4-1B', 15],
    ['223', 'GRID T4-2B', 0],
    ['229', 'GRID T4-16A', 0],
  ];
  for (const [id, name, av] of types) {
    const d = `${T4}/mdev_supported_types/nvidia-${id}`;
    await s.file(`${d}/create`, '', 0o200);
    await s.file(`${d}/name`, `${name}\n`);
    await s.file(`${d}/description`, id === '222' ? T4_DESC : `num_heads=${id}\n`);
    await s.file(`${d}/device_api`, 'vfio-pci\n');
    await s.file(`${d}/available_instances`, `${av}\n`);
    await s.dir(`${d}/devices`);
  }
  await s.link(`${T4}/mdev_supported_types/nvidia-222/devices/${DEV}`, `../../../${DEV}`);
  const u = `${T4}/${DEV}`;
  await s.link(`${u}/mdev_type`, '../mdev_supported_types/nvidia-222');
  await s.link(`${u}/driver`, '../../../../../bus/mdev/drivers/nvidia-vgpu-vfio');
  await s.link(`${u}/subsystem`, '../../../../../bus/mdev');
  await s.link(`${u}/iommu_group`, '../../../../../kernel/iommu_groups/7');
  await s.file(`${u}/remove`, '', 0o200);
  await s.file(`${u}/uevent`, 'DRIVER=nvidia-vgpu-vfio\n', 0o644);
  await s.file(`${u}/power/control`, 'auto\n', 0o644);
  await s.file(`${u}/nvidia/vgpu_params`, 'frame_rate_limiter=0\n', 0o644);
  await s.file(`${u}/nvidia/whoami`, `vGPU ${DEV} {0}\n`);
  await s.file(`${u}/nvidia/reset`, '', 0o200);
  await s.link(`bus/mdev/devices/${DEV}`, `../../../${u}`);

  // The mtty sample: a class device, no bus, no driver, no description.
  await s.link('class/mdev_bus/mtty', '../../devices/virtual/mtty/mtty');
  await s.link(`${MTTY}/subsystem`, '../../../../class/mtty');
  await s.file(`${MTTY}/uevent`, '', 0o644);
  for (const [id, name, av] of [
    ['1', 'Single port serial', 24],
    ['2', 'Dual port serial', 12],
  ] as const) {
    const d = `${MTTY}/mdev_supported_types/mtty-${id}`;
    await s.file(`${d}/create`, '', 0o200);
    await s.file(`${d}/name`, `${name}\n`);
    await s.file(`${d}/device_api`, 'vfio-pci\n');
    await s.file(`${d}/available_instances`, `${av}\n`);
    await s.dir(`${d}/devices`);
  }

  // i915 GVT-g: the name falls back to the id; a multi-line description.
  await s.link('class/mdev_bus/0000:00:02.0', '../../devices/pci0000:00/0000:00:02.0');
  await s.link(`${GVT}/subsystem`, '../../../bus/pci');
  await s.link(`${GVT}/driver`, '../../../bus/pci/drivers/i915');
  await s.file(`${GVT}/vendor`, '0x8086\n');
  for (const [id, av] of [
    ['GVTg_V5_4', 4],
    ['GVTg_V5_8', 8],
  ] as const) {
    const d = `${GVT}/mdev_supported_types/i915-${id}`;
    await s.file(`${d}/create`, '', 0o200);
    await s.file(`${d}/name`, `${id}\n`);
    await s.file(`${d}/description`, id === 'GVTg_V5_4' ? GVT_DESC : 'x\n');
    await s.file(`${d}/device_api`, 'vfio-pci\n');
    await s.file(`${d}/available_instances`, `${av}\n`);
    await s.dir(`${d}/devices`);
  }

  // A vfio_ccw subchannel.
  await s.link('class/mdev_bus/0.0.0313', '../../devices/css0/0.0.0313');
  await s.link(`${CCW}/subsystem`, '../../../bus/css');
  await s.link(`${CCW}/driver`, '../../../bus/css/drivers/vfio_ccw');
  await s.file(`${CCW}/modalias`, 'css:t0\n');
  const d = `${CCW}/mdev_supported_types/vfio_ccw-io`;
  await s.file(`${d}/create`, '', 0o200);
  await s.file(`${d}/name`, 'I/O subchannel (Non-QDIO)\n');
  await s.file(`${d}/device_api`, 'vfio-ccw\n');
  await s.file(`${d}/available_instances`, '1\n');
  await s.dir(`${d}/devices`);
}

const EXPECTED: ConfigDoc = {
  $comment: '',
  version: 1,
  parents: [
    {
      path: CCW,
      typePrefix: 'vfio_ccw',
      driver: 'vfio_ccw_mdev',
      deviceApi: 'vfio-ccw',
      subsystem: { bus: 'css' },
      parentDriver: 'vfio_ccw',
      attrs: { modalias: 'css:t0\n' },
      capacity: { model: 'fixed' },
      types: [{ id: 'io', name: 'I/O subchannel (Non-QDIO)', max: 1 }],
    },
    {
      path: GVT,
      typePrefix: 'i915',
      driver: 'intel_vgpu_mdev',
      deviceApi: 'vfio-pci',
      subsystem: { bus: 'pci' },
      parentDriver: 'i915',
      attrs: { vendor: '0x8086\n' },
      capacity: { model: 'fixed' },
      types: [
        { id: 'GVTg_V5_4', description: GVT_DESC, max: 4 },
        { id: 'GVTg_V5_8', description: 'x\n', max: 8 },
      ],
    },
    {
      path: T4,
      typePrefix: 'nvidia',
      driver: 'nvidia-vgpu-vfio',
      deviceApi: 'vfio-pci',
      subsystem: { bus: 'pci' },
      parentDriver: 'nvidia',
      iommuGroup: 36,
      attrs: {
        vendor: '0x10de\n',
        device: '0x1eb8\n',
        class: '0x030200\n',
        subsystem_vendor: '0x10de\n',
        subsystem_device: '0x12a2\n',
        numa_node: { value: '0\n', writable: true },
        uevent: 'DRIVER=nvidia\nPCI_SLOT_NAME=0000:3b:00.0\nX={{not a template}}\n',
        resource: '0x00000000ab000000 0x00000000abffffff 0x0000000000040200\n',
      },
      capacity: { model: 'fixed' },
      types: [
        { id: '222', name: 'GRID T4-1B', description: T4_DESC, max: 16 },
        { id: '223', name: 'GRID T4-2B', description: 'num_heads=223\n', max: 0 },
        { id: '229', name: 'GRID T4-16A', description: 'num_heads=229\n', max: 0 },
      ],
      deviceAttrs: {
        'nvidia/reset': { writable: true, mode: '0200' },
        'nvidia/vgpu_params': { value: 'frame_rate_limiter=0\n', writable: true },
        'nvidia/whoami': 'vGPU {uuid} {{0}}\n',
      },
    },
    {
      path: MTTY,
      typePrefix: 'mtty',
      driver: 'mtty',
      deviceApi: 'vfio-pci',
      subsystem: { class: 'mtty' },
      capacity: { model: 'fixed' },
      types: [
        { id: '1', name: 'Single port serial', max: 24 },
        { id: '2', name: 'Dual port serial', max: 12 },
      ],
    },
  ],
};

const showAll = async (groups: readonly AttributeGroup<Parent>[] | undefined, p: Parent): Promise<Record<string, string>> => {
  const out: Record<string, string> = {};
  for (const g of groups ?? []) {
    for (const a of g.attrs as Attribute<Parent>[]) out[(g.name ? g.name + '/' : '') + a.name] = String(await a.show!(p));
  }
  return out;
};

t.test('capture a kernel-style tree', async t => {
  const root = await freshRoot();
  await buildFakeSys(root);
  const doc = await captureSysfs(root);
  t.same(doc, { ...EXPECTED, $comment: `Captured from ${root} by mdevfs capture` });
  t.same(validateConfig(doc), []);
  t.same(parseConfig(formatConfig(doc)), doc, 'formatConfig output reads back');
  t.same(
    Object.keys(doc.parents[2]!),
    ['path', 'typePrefix', 'driver', 'deviceApi', 'subsystem', 'parentDriver', 'iommuGroup', 'attrs', 'capacity', 'types', 'deviceAttrs'],
    'fields in a readable order',
  );
});

t.test('mounting the capture reproduces the tree', async t => {
  const root = await freshRoot();
  await buildFakeSys(root);
  const doc = await captureSysfs(root);
  const core = await loaded(doc);

  const names = (await readdir(join(root, 'class/mdev_bus'))).sort();
  t.same([...core.parents()].map(p => p.name).sort(), names, 'same parents');
  for (const name of names) {
    const p = parentOf(core, name);
    const path = join(root, 'class/mdev_bus', name);
    t.equal(join(root, p.device.path), join(dirname(path), await readlink(path)), `${name}: same path`);
    const typesDir = join(path, 'mdev_supported_types');
    const typeNames = (await readdir(typesDir)).sort();
    t.same(p.types.map(x => x.id).sort(), typeNames, `${name}: same types`);
    for (const ty of p.types) {
      const dir = join(typesDir, ty.id);
      const read = (f: string) => readFile(join(dir, f), 'utf8').catch(() => undefined);
      t.equal(`${ty.name}\n`, await read('name'), `${ty.id}: name`);
      t.equal(ty.spec.description, await read('description'), `${ty.id}: description`);
      t.equal(`${ty.deviceApi}\n`, await read('device_api'), `${ty.id}: device_api`);
      const existing = (await readdir(join(dir, 'devices'))).length;
      t.equal(
        core.availableInstances(ty),
        parseInt((await read('available_instances'))!, 10) + existing,
        `${ty.id}: available_instances with no devices = available + existing`,
      );
    }
    // identity
    const files = await showAll(p.device.attrs, p);
    for (const [k, v] of Object.entries(files)) t.equal(v, await readFile(join(path, k), 'utf8'), `${name}/${k}`);
    const sub = await readlink(join(path, 'subsystem'));
    t.same(
      p.device.subsystem,
      sub.includes('/class/') ? { class: sub.split('/').pop() } : { bus: sub.split('/').pop() },
      `${name}: subsystem`,
    );
  }
  t.equal(parentOf(core, '0000:3b:00.0').device.iommuGroup, 36);
  t.equal(parentOf(core, '0000:3b:00.0').device.driver, 'nvidia');
  t.equal(parentOf(core, 'mtty').device.driver, undefined);

  // The captured vendor files, on a new device.
  const p = parentOf(core, '0000:3b:00.0');
  const u = freshUuid();
  const dev = await core.create(p.types[0]!, u);
  const nv = p.ops.mdevAttrGroups!.find(g => g.name === 'nvidia')!;
  const byName = Object.fromEntries(nv.attrs.map(a => [a.name, a]));
  t.equal(await byName.whoami!.show!(dev), `vGPU ${u} {0}\n`, 'the captured device UUID became {uuid}; braces survive');
  t.equal(await byName.vgpu_params!.show!(dev), 'frame_rate_limiter=0\n');
  t.equal(byName.reset!.mode, 0o200);
  t.equal(byName.reset!.show, undefined);
});

t.test('capture errors', async t => {
  const empty = await freshRoot();
  await t.rejects(captureSysfs(empty), { kind: 'read', message: /nothing to capture: .*class\/mdev_bus has no mdev parents/ });

  const outside = await freshRoot();
  const s = new FakeSys(outside);
  await s.link('class/mdev_bus/gpu', '/nonexistent/devices/gpu');
  await t.rejects(captureSysfs(outside), { kind: 'read', message: /does not lead to a device below/ });

  const noTypes = await freshRoot();
  const s2 = new FakeSys(noTypes);
  await s2.link('class/mdev_bus/x', '../../devices/virtual/x/x');
  await s2.dir('devices/virtual/x/x');
  await t.rejects(captureSysfs(noTypes), { kind: 'read', message: /no mdev_supported_types/ });

  const badApi = await freshRoot();
  const s3 = new FakeSys(badApi);
  await s3.link('class/mdev_bus/x', '../../devices/virtual/x/x');
  await s3.file('devices/virtual/x/x/mdev_supported_types/x-1/device_api', 'vfio_mdev\n');
  await s3.file('devices/virtual/x/x/mdev_supported_types/x-1/available_instances', '4\n');
  try {
    await captureSysfs(badApi);
    t.fail('captured');
  } catch (e) {
    t.ok(e instanceof ConfigError);
    t.equal((e as ConfigError).kind, 'invalid');
    t.match((e as Error).message, 'parents[0].deviceApi: must be one of');
  }
});

// ---------------------------------------------------------------------------
// mdevfs's own tree

/** Write the presenter's tree out as plain files (what a mount would show). */
async function materialize(dir: KDir, to: string): Promise<void> {
  await mkdir(to, { recursive: true });
  for (const [name, node] of dir.children) {
    const p = join(to, name);
    if (node instanceof KDir) await materialize(node, p);
    else if (node instanceof KLink) await symlink(node.targetText(), p);
    else if (node instanceof KAttr) {
      let content: Buffer = Buffer.alloc(0);
      if (node.mode & 0o444) {
        try {
          content = await node.show();
        } catch {
          /* e.g. power/autosuspend_delay_ms: EIO */
        }
      }
      await writeFile(p, content);
      await chmod(p, node.mode);
    }
  }
}

/** Every file and link below the parents and in class/mdev_bus: path → content or link text. */
async function snapshot(root: string, doc: ConfigDoc): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (rel: string): Promise<void> => {
    const st = await lstat(join(root, rel));
    if (st.isSymbolicLink()) out[rel] = `-> ${await readlink(join(root, rel))}`;
    else if (st.isDirectory()) for (const e of await readdir(join(root, rel))) await walk(`${rel}/${e}`);
    else out[rel] = `${(st.mode & 0o777).toString(8)} ${st.mode & 0o444 ? await readFile(join(root, rel), 'utf8') : ''}`;
  };
  await walk('class/mdev_bus');
  for (const p of doc.parents) await walk(p.path);
  return out;
}

for (const name of ['t4-host.json', 'gvtg-host.json', 's390-host.json', 'mtty-fixed.json']) {
  t.test(`mdevfs tree round trip: ${name}`, async t => {
    const original = await fixture(name);
    const core1 = new MdevCore();
    await core1.loadPlugin(compileConfig(original));
    const root1 = await freshRoot();
    await materialize(new SysfsPresenter(core1).attach().root, root1);

    const captured = await captureSysfs(root1);
    t.same(captured.parents.map(p => p.path).sort(), original.parents.map(p => p.path).sort(), 'same parents');

    const core2 = new MdevCore();
    await core2.loadPlugin(compileConfig(captured));
    const root2 = await freshRoot();
    await materialize(new SysfsPresenter(core2).attach().root, root2);

    t.same(await snapshot(root2, captured), await snapshot(root1, original), 'the capture mounts as the same tree');
    for (const p of original.parents) {
      const pname = p.path.split('/').pop()!;
      t.same(availability(core2, pname), availability(core1, pname), `${pname}: available_instances`);
    }
  });
}

t.test('mdevfs tree with a device: vendor files and max = available + existing', async t => {
  const original = await fixture('mtty-fixed.json');
  const core1 = new MdevCore();
  await core1.loadPlugin(compileConfig(original));
  const presenter1 = new SysfsPresenter(core1).attach();
  const mtty2 = parentOf(core1, 'mtty').types.find(x => x.id === 'mtty-2')!;
  const dev = await core1.create(mtty2, freshUuid());
  const withDevice = await freshRoot();
  await materialize(presenter1.root, withDevice);
  t.ok((await readdir(join(withDevice, MTTY))).includes(dev.uuid), 'the device is in the tree');

  const captured = await captureSysfs(withDevice);
  t.same(captured.parents[0]!.deviceAttrs, original.parents[0]!.deviceAttrs, 'vendor files, with the device UUID as {uuid}');
  t.same(
    captured.parents[0]!.types.map(x => [x.id, x.max]),
    [
      ['1', 24],
      ['2', 12],
    ],
  );

  await core1.remove(dev);
  const without = await freshRoot();
  await materialize(presenter1.root, without);
  const core2 = new MdevCore();
  await core2.loadPlugin(compileConfig(captured));
  const root2 = await freshRoot();
  await materialize(new SysfsPresenter(core2).attach().root, root2);
  const snap = await snapshot(root2, captured);
  t.same(snap, await snapshot(without, original), 'the capture mounts as the tree without its device');
  t.equal(snap[`${MTTY}/mdev_supported_types/mtty-2/available_instances`], '444 12\n', 'the snapshot is not vacuous');
  t.equal(snap['class/mdev_bus/mtty'], '-> ../../devices/virtual/mtty/mtty');
});
