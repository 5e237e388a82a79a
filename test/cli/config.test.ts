// `mdevfs mount --config <file>`: real mounts of the example configs
// (examples/config/*.json), checked from child processes (python3 raw
// syscalls), and bad configs: every problem printed, exit 1, nothing mounted.
import t, { type Test } from 'tap';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startDaemon, mdevfsMount, makeMountDir, spawnChild, isMounted, REPO, FIXTURES, type Daemon } from '../helpers/daemon.js';
import { sys, writeOnce, readOnce, one, type Step } from '../helpers/sys.js';

const EXAMPLES = path.join(REPO, 'examples/config');
const T4_FILE = path.join(EXAMPLES, 't4-host.json');
const BAD = path.join(FIXTURES, 'config/bad');
const T4 = 'devices/pci0000:3a/0000:3a:00.0/0000:3b:00.0';
const TYPES = `${T4}/mdev_supported_types`;
const U1 = '5e1c4d2a-8f3b-4c6e-9a7d-0b1c2d3e4f01';

interface TypeDoc {
  id: string;
  name?: string;
  description?: string;
  max?: number;
}
interface ParentDoc {
  path: string;
  attrs?: Record<string, string>;
  types: TypeDoc[];
}
interface Doc {
  $schema?: string;
  parents: ParentDoc[];
}

const readDoc = async (file: string): Promise<Doc> => JSON.parse(await fsp.readFile(file, 'utf8')) as Doc;

/** Every mount point this file used: none may be left mounted at the end. */
const ours: string[] = [];
const started = async (tt: Test, ...args: string[]): Promise<Daemon> => {
  const d = await startDaemon(tt, { command: mdevfsMount(...args) });
  ours.push(d.dir);
  return d;
};

t.test('examples/config/*.json are the test fixtures (only $schema differs)', async t => {
  for (const f of ['t4-host.json', 'gvtg-host.json', 's390-host.json']) {
    const ex = await readDoc(path.join(EXAMPLES, f));
    const fx = await readDoc(path.join(FIXTURES, 'config', f));
    t.equal(ex.$schema, '../../src/config/mdevfs-config.schema.json', `${f}: $schema resolves from examples/config`);
    await fsp.access(path.resolve(EXAMPLES, ex.$schema!));
    t.same({ ...ex, $schema: undefined }, { ...fx, $schema: undefined }, f);
  }
});

t.test('mount --config examples/config/t4-host.json', async t => {
  const doc = await readDoc(T4_FILE);
  const parent = doc.parents[0]!;
  const d = await started(t, '--config', T4_FILE, '--call-timeout', '2000');
  const p = d.p;
  t.match(d.stdout, /^mdevfs: mounted \S+ \(profile modern, 1 parent\)$/m, 'one parent: no sample drivers with --config alone');

  t.same(await one(['listdir', p('class/mdev_bus')]), ['0000:3b:00.0']);
  t.equal(await one(['readlink', p('class/mdev_bus/0000:3b:00.0')]), `../../${T4}`);
  t.same(await one(['listdir', p('bus/mdev/drivers')]), ['nvidia-vgpu-vfio']);
  t.equal(await one(['readlink', p(`${T4}/driver`)]), '../../../../bus/pci/drivers/nvidia');
  t.equal(await one(['readlink', p(`${T4}/iommu_group`)]), '../../../../kernel/iommu_groups/36');
  for (const [attr, value] of Object.entries(parent.attrs ?? {})) {
    t.equal(await readOnce(p(`${T4}/${attr}`)), value.replace('{parent}', '0000:3b:00.0'), `parent ${attr}`);
  }

  // Every type: its directory, name, description, device_api, available_instances.
  t.same(await one(['listdir', p(TYPES)]), parent.types.map(ty => `nvidia-${ty.id}`).sort());
  // One python process for all 52 files: open, read, close each (fd n is the n-th open).
  const FILES = ['name', 'description', 'device_api', 'available_instances'];
  const steps: Step[] = [];
  let fd = 0;
  for (const ty of parent.types) {
    for (const f of FILES) {
      steps.push(['open', p(`${TYPES}/nvidia-${ty.id}/${f}`), 'O_RDONLY'], ['read', fd, 4096], ['close', fd]);
      fd++;
    }
  }
  const res = await sys(steps);
  parent.types.forEach((ty, i) => {
    const at = (k: number) => res[(i * FILES.length + k) * 3 + 1]!;
    t.equal(at(0).ok, `${ty.name}\n`, `nvidia-${ty.id} name`);
    t.equal(at(1).ok, ty.description, `nvidia-${ty.id} description`);
    t.equal(at(2).ok, 'vfio-pci\n', `nvidia-${ty.id} device_api`);
    t.equal(at(3).ok, `${ty.max}\n`, `nvidia-${ty.id} available_instances`);
  });

  t.test('create and remove through the file system', async t => {
    const dev = `${T4}/${U1}`;
    const r = await sys([
      ['open', p(`${TYPES}/nvidia-222/create`), 'O_WRONLY'],
      ['write', 0, `${U1}\n`],
      ['close', 0],
      ['lstat', p(dev)],
      ['readlink', p(`${dev}/mdev_type`)],
      ['readlink', p(`${dev}/driver`)],
      ['readlink', p(`${TYPES}/nvidia-222/devices/${U1}`)],
      ['lstat', p(`${dev}/nvidia/vgpu_params`)],
    ]);
    t.equal(r[1]!.ok, 37, 'create accepted the UUID');
    t.equal((r[3]!.ok as { mode: number }).mode & 0o170000, 0o040000, 'the device directory exists when the write returns');
    t.equal(r[4]!.ok, '../mdev_supported_types/nvidia-222');
    t.match(r[5]!.ok, /bus\/mdev\/drivers\/nvidia-vgpu-vfio$/);
    t.equal(r[6]!.ok, `../../../${U1}`);
    t.equal((r[7]!.ok as { mode: number }).mode, 0o100644, 'deviceAttrs: nvidia/vgpu_params, writable');
    t.equal(await readOnce(p(`${dev}/nvidia/vgpu_params`)), '');
    t.equal(await writeOnce(p(`${dev}/nvidia/vgpu_params`), 'enable_uvm=1\n'), 13);
    t.equal(await readOnce(p(`${dev}/nvidia/vgpu_params`)), 'enable_uvm=1\n', 'a write replaces the value');

    t.equal(await readOnce(p(`${TYPES}/nvidia-222/available_instances`)), '15\n', 'pool: 16384 - 1024 = 15 × 1024');
    t.equal(await readOnce(p(`${TYPES}/nvidia-223/available_instances`)), '0\n', 'oneTypeAtATime: other types read 0');
    t.equal(await writeOnce(p(`${TYPES}/nvidia-223/create`), '5e1c4d2a-8f3b-4c6e-9a7d-0b1c2d3e4f02\n'), 'EINVAL', 'and refuse creates');
    t.same(await one(['listdir', p(`${TYPES}/nvidia-222/devices`)]), [U1]);

    t.equal(await writeOnce(p(`${dev}/remove`), '1\n'), 2);
    t.same(await one(['lstat', p(dev)]), { errno: 'ENOENT' });
    t.equal(await readOnce(p(`${TYPES}/nvidia-223/available_instances`)), '8\n', 'free again');
  });
});

t.test('--config is repeatable and combines with --driver', async t => {
  const d = await started(
    t,
    '--driver',
    path.join(REPO, 'examples/mtty.ts'),
    '--config',
    T4_FILE,
    '--config',
    path.join(EXAMPLES, 'gvtg-host.json'),
    '--config',
    path.join(EXAMPLES, 's390-host.json'),
  );
  t.match(d.stdout, /\(profile modern, 5 parents\)/);
  t.same(await one(['listdir', d.p('class/mdev_bus')]), ['0.0.0313', '0000:00:02.0', '0000:3b:00.0', 'matrix', 'mtty'].sort());
  t.same(
    await one(['listdir', d.p('bus/mdev/drivers')]),
    ['intel_vgpu_mdev', 'mtty', 'nvidia-vgpu-vfio', 'vfio_ap_mdev', 'vfio_ccw_mdev'].sort(),
  );
  t.equal(await readOnce(d.p('devices/pci0000:00/0000:00:02.0/mdev_supported_types/i915-GVTg_V5_4/available_instances')), '4\n');
  t.equal(await readOnce(d.p('devices/vfio_ap/matrix/mdev_supported_types/vfio_ap-passthrough/name')), 'VFIO AP Passthrough Device\n');
  t.equal(await readOnce(d.p('devices/virtual/mtty/mtty/mdev_supported_types/mtty-2/available_instances')), '12\n', 'the TS driver too');
});

t.test('--config with the legacy profile', async t => {
  const d = await started(t, '--profile', 'legacy', '--config', path.join(EXAMPLES, 'gvtg-host.json'));
  t.match(d.stdout, /\(profile legacy, 1 parent\)/);
  t.equal(await readOnce(d.p('devices/pci0000:00/0000:00:02.0/mdev_supported_types/i915-GVTg_V5_8/available_instances')), '8\n');
});

/** A mount that must fail: exit status 1, only "mdevfs: " lines on stderr, nothing on stdout, nothing mounted. */
async function mustFail(t: Test, args: string[]): Promise<string[]> {
  const dir = await makeMountDir(t);
  ours.push(dir);
  const c = spawnChild(t, mdevfsMount(...args)(dir));
  const e = await c.exited;
  t.equal(e.code, 1, 'exit status 1');
  t.equal(c.out(), '', 'no ready line');
  t.notOk(await isMounted(dir), 'nothing mounted');
  t.same(await fsp.readdir(dir), [], 'mount point untouched');
  const lines = c
    .err()
    .split('\n')
    .filter(l => l !== '');
  t.ok(lines.length > 0 && lines.every(l => l.startsWith('mdevfs: ')), 'every stderr line starts with "mdevfs: "');
  t.notMatch(c.err(), /\n\s+at /, 'no stack trace');
  return lines;
}

t.test('a bad config: every error, exit 1, no mount', async t => {
  t.test('many errors: all of them, each on its own line', async t => {
    const file = path.join(BAD, 'many-errors.json');
    const rel = path.relative(REPO, file);
    const lines = await mustFail(t, ['--config', rel]);
    t.equal(lines[0], `mdevfs: invalid mdevfs config ${rel} (7 errors):`);
    t.equal(lines.length, 8, lines.join('\n'));
    for (const l of lines.slice(1)) t.match(l, new RegExp(`^mdevfs:   ${rel.replace(/[.]/g, '\\.')}:\\d+:\\d+: parents\\[\\d\\]\\S*: `));
    t.match(lines.join('\n'), /parents\[1\]\.types\[0\]\.cost: required/);
  });

  t.test('one error, after a good config and a driver: still nothing mounted', async t => {
    const lines = await mustFail(t, [
      '--driver',
      'examples/mtty.ts',
      '--config',
      T4_FILE,
      '--config',
      path.join(BAD, 'duplicate-type-id.json'),
    ]);
    t.match(lines[0], /^mdevfs: invalid mdevfs config \S+duplicate-type-id\.json \(1 error\):$/);
    t.equal(lines.length, 2);
  });

  t.test('a missing file: one line', async t => {
    const lines = await mustFail(t, ['--config', '/nonexistent/host.json']);
    t.same(lines, ['mdevfs: cannot read config file /nonexistent/host.json: no such file (ENOENT)']);
  });

  t.test('bad JSON: one line with file:line:col', async t => {
    const tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'mdevfs-config-cli-'));
    t.teardown(() => fsp.rm(tmp, { recursive: true, force: true }));
    const file = path.join(tmp, 'broken.json');
    await fsp.writeFile(file, '{\n  "parents": [\n');
    const lines = await mustFail(t, ['--config', file]);
    t.equal(lines.length, 1);
    t.match(lines[0], new RegExp(`^mdevfs: ${file.replace(/[.]/g, '\\.')}:3:1: invalid JSON: `));
  });

  t.test("a valid config clashing with a driver's parent: one line, nothing mounted", async t => {
    const lines = await mustFail(t, ['--driver', 'examples/samples.ts', '--config', path.join(FIXTURES, 'config/mtty-fixed.json')]);
    t.same(lines, [
      'mdevfs: driver config:mtty-fixed failed to initialise: registerDevice: devices/virtual/mtty/mtty is already a parent (EEXIST)',
    ]);
  });
});

t.test('no mount of this file is left', async t => {
  const mounts = await fsp.readFile('/proc/mounts', 'utf8');
  const left = mounts.split('\n').filter(l => l.includes('fuse') && ours.some(d => l.split(' ')[1] === d));
  t.same(left, [], 'grep fuse /proc/mounts: none of ours');
  t.ok(ours.length >= 8, `${ours.length} mount points checked`);
});
