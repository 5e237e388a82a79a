// `mdevfs capture`: the command's errors and output, and the round trip
// through real mounts:
//
//   mount A  = the sample drivers + examples/config/t4-host.json
//   bin/mdevfs capture --sysfs A -o cap.json      (a separate process)
//   mount B  = --config cap.json
//   A and B compared file by file: names, modes, link targets, the contents
//   of every readable attribute.
//
// Then the same with one device on every parent (so device vendor files are
// captured), the same devices created on the copy.
//
// The test process reads the mounts with async fs only (never sync: a
// blocking call into a FUSE mount stalls whatever else this process does);
// the daemons are separate processes.
import t, { type Test } from 'tap';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startDaemon, mdevfsMount, run, BIN, REPO, type Daemon } from '../helpers/daemon.js';
import { writeOnce, readOnce } from '../helpers/sys.js';

const SAMPLES = path.join(REPO, 'examples/samples.ts');
const T4_FILE = path.join(REPO, 'examples/config/t4-host.json');

const capture = (...args: string[]) => run(process.execPath, [BIN, 'capture', ...args], { timeoutMs: 60_000 });

const tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'mdevfs-capture-cli-'));
t.teardown(() => fsp.rm(tmp, { recursive: true, force: true }));

/** Every mount point this file used: none may be left mounted at the end. */
const ours: string[] = [];
const started = async (tt: Test, ...args: string[]): Promise<Daemon> => {
  const d = await startDaemon(tt, { command: mdevfsMount(...args) });
  ours.push(d.dir);
  return d;
};

// ---------------------------------------------------------------------------
// A tree, file by file

type Node =
  | { kind: 'dir'; mode: number }
  | { kind: 'link'; mode: number; target: string }
  | { kind: 'file'; mode: number; content?: string; error?: string };

/** Every entry below `root` (not following links), by relative path. */
async function walk(root: string): Promise<Map<string, Node>> {
  const out = new Map<string, Node>();
  const visit = async (rel: string): Promise<void> => {
    const abs = path.join(root, rel);
    const st = await fsp.lstat(abs);
    const mode = st.mode & 0o7777;
    if (st.isSymbolicLink()) {
      out.set(rel, { kind: 'link', mode, target: await fsp.readlink(abs) });
    } else if (st.isDirectory()) {
      if (rel !== '') out.set(rel, { kind: 'dir', mode });
      for (const e of (await fsp.readdir(abs)).sort()) await visit(rel === '' ? e : `${rel}/${e}`);
    } else {
      const node: Node = { kind: 'file', mode };
      if (mode & 0o444) {
        try {
          node.content = await fsp.readFile(abs, 'latin1');
        } catch (e) {
          node.error = (e as NodeJS.ErrnoException).code ?? String(e);
        }
      }
      out.set(rel, node);
    }
  };
  await visit('');
  return out;
}

interface Diff {
  path: string;
  a?: Node;
  b?: Node;
}

function diffTrees(a: Map<string, Node>, b: Map<string, Node>, skip: (p: string) => boolean = () => false): Diff[] {
  const diffs: Diff[] = [];
  for (const p of new Set([...a.keys(), ...b.keys()])) {
    if (skip(p)) continue;
    const x = a.get(p);
    const y = b.get(p);
    if (JSON.stringify(x) !== JSON.stringify(y)) diffs.push({ path: p, a: x, b: y });
  }
  return diffs.sort((x, y) => (x.path < y.path ? -1 : 1));
}

/** One file of A and B that differs, as "path: A=… B=…". */
const show = (d: Diff): string => `${d.path}: A=${JSON.stringify(d.a)} B=${JSON.stringify(d.b)}`;

// ---------------------------------------------------------------------------
// The command, on plain-file trees

/** A minimal host tree in plain files: one parent, one type, whose device_api is `api`. */
async function fakeSys(name: string, api = 'vfio-pci'): Promise<string> {
  const root = path.join(tmp, name);
  const parent = path.join(root, 'devices/virtual/fake/fake0');
  const type = path.join(parent, 'mdev_supported_types/fake-1');
  await fsp.mkdir(type, { recursive: true });
  await fsp.mkdir(path.join(type, 'devices'));
  await fsp.mkdir(path.join(root, 'class/mdev_bus'), { recursive: true });
  await fsp.symlink('../../devices/virtual/fake/fake0', path.join(root, 'class/mdev_bus/fake0'));
  await fsp.writeFile(path.join(type, 'name'), 'Fake type\n');
  await fsp.writeFile(path.join(type, 'device_api'), `${api}\n`);
  await fsp.writeFile(path.join(type, 'available_instances'), '3\n');
  return root;
}

t.test('capture: output and errors', async t => {
  t.test('stdout by default, -o writes the same text to a file', async t => {
    const root = await fakeSys('plain');
    const out = await capture('--sysfs', root);
    t.equal(out.code, 0, out.stderr);
    t.equal(out.stderr, '', 'quiet on stderr when writing to stdout');
    const doc = JSON.parse(out.stdout) as {
      version: number;
      parents: Array<{ path: string; typePrefix: string; driver: string; types: unknown[] }>;
    };
    t.equal(doc.version, 1);
    t.match(doc.parents, [
      { path: 'devices/virtual/fake/fake0', typePrefix: 'fake', driver: 'fake', types: [{ id: '1', name: 'Fake type', max: 3 }] },
    ]);
    t.ok(out.stdout.endsWith('}\n'));

    const file = path.join(tmp, 'plain.json');
    const r = await capture('--sysfs', root, '-o', file);
    t.equal(r.code, 0, r.stderr);
    t.equal(r.stdout, '');
    t.equal(r.stderr, `mdevfs: captured 1 parent (1 type) from ${root} to ${file}\n`);
    t.equal(await fsp.readFile(file, 'utf8'), out.stdout);
    t.same(
      (await fsp.readdir(tmp)).filter(f => f.endsWith('.tmp')),
      [],
      'no temporary file left',
    );

    const dash = await capture('--sysfs', root, '--output', '-');
    t.equal(dash.stdout, out.stdout, '-o - is stdout');
  });

  t.test('no class/mdev_bus: one line, exit 1, no file', async t => {
    const root = path.join(tmp, 'not-a-host');
    await fsp.mkdir(path.join(root, 'class/net'), { recursive: true });
    const file = path.join(tmp, 'none.json');
    const r = await capture('--sysfs', root, '-o', file);
    t.equal(r.code, 1);
    t.equal(r.stdout, '');
    t.equal(r.stderr, `mdevfs: no mdev parents under ${root} (is this a host with mdev support?)\n`);
    await t.rejects(fsp.access(file), 'no output file');
  });

  t.test('class/mdev_bus with no parents: an error, not an empty document', async t => {
    const root = path.join(tmp, 'empty-bus');
    await fsp.mkdir(path.join(root, 'class/mdev_bus'), { recursive: true });
    const file = path.join(tmp, 'empty.json');
    const r = await capture('--sysfs', root, '-o', file);
    t.equal(r.code, 1);
    t.equal(r.stderr, `mdevfs: nothing to capture: ${root}/class/mdev_bus has no mdev parents (is an mdev vendor driver loaded?)\n`);
    await t.rejects(fsp.access(file), 'no output file');
  });

  t.test('a root that does not exist', async t => {
    const r = await capture('--sysfs', path.join(tmp, 'nowhere'));
    t.equal(r.code, 1);
    t.equal(r.stderr, `mdevfs: cannot capture ${path.join(tmp, 'nowhere')}: no such directory\n`);
  });

  t.test('a tree that does not make a valid config: every problem, each line prefixed', async t => {
    const root = await fakeSys('bad-api', 'vfio-bogus');
    const r = await capture('--sysfs', root);
    t.equal(r.code, 1);
    t.equal(r.stdout, '');
    const lines = r.stderr.split('\n').filter(l => l !== '');
    t.equal(lines[0], `mdevfs: the tree under ${root} does not make a valid config:`);
    t.ok(lines.length >= 2, r.stderr);
    t.ok(
      lines.every(l => l.startsWith('mdevfs: ')),
      r.stderr,
    );
    t.match(lines.slice(1).join('\n'), /deviceApi/);
  });

  t.test('an unwritable output', async t => {
    const root = await fakeSys('plain2');
    const file = path.join(tmp, 'no/such/dir/host.json');
    const r = await capture('--sysfs', root, '-o', file);
    t.equal(r.code, 1);
    t.equal(r.stderr, `mdevfs: cannot write ${file}: no such directory (ENOENT)\n`);
  });

  t.test('help documents the empty-tree rule', async t => {
    const r = await run(process.execPath, [BIN, 'capture', '--help']);
    t.equal(r.code, 0);
    t.match(r.stdout, /--sysfs <root>/);
    t.match(r.stdout, /-o, --output <file>/);
    t.match(r.stdout, /with no parents in it, is an error/);
  });
});

// ---------------------------------------------------------------------------
// The round trip through real mounts

const T4 = 'devices/pci0000:3a/0000:3a:00.0/0000:3b:00.0';
const MBOCHS = 'devices/virtual/mbochs/mbochs';
/** One device per parent, on a type that is not the first. */
const DEVICES: Array<[type: string, uuid: string]> = [
  ['devices/virtual/mtty/mtty/mdev_supported_types/mtty-2', '0c5a3f8e-7b1d-4e2a-9c6f-1a2b3c4d5e01'],
  ['devices/virtual/mdpy/mdpy/mdev_supported_types/mdpy-xga', '0c5a3f8e-7b1d-4e2a-9c6f-1a2b3c4d5e02'],
  [`${MBOCHS}/mdev_supported_types/mbochs-small`, '0c5a3f8e-7b1d-4e2a-9c6f-1a2b3c4d5e03'],
  [`${T4}/mdev_supported_types/nvidia-230`, '0c5a3f8e-7b1d-4e2a-9c6f-1a2b3c4d5e04'],
];

async function createAll(d: Daemon, t: Test): Promise<void> {
  for (const [type, uuid] of DEVICES)
    t.equal(await writeOnce(d.p(type, 'create'), `${uuid}\n`), 37, `create ${uuid} on ${path.basename(type)}`);
}

t.test('round trip: samples + t4-host.json → capture → mount the capture → the same tree', async t => {
  const a = await started(t, '--driver', SAMPLES, '--config', T4_FILE);
  t.match(a.stdout, /\(profile modern, 4 parents\)/);

  t.test('no devices: every file identical', async t => {
    const cap = path.join(tmp, 'cap.json');
    const r = await capture('--sysfs', a.dir, '-o', cap);
    t.equal(r.code, 0, r.stderr);
    t.equal(r.stderr, `mdevfs: captured 4 parents (21 types) from ${a.dir} to ${cap}\n`);
    const b = await started(t, '--config', cap);
    t.match(b.stdout, /\(profile modern, 4 parents\)/);

    const ta = await walk(a.dir);
    const tb = await walk(b.dir);
    // The walk really read the tree: links, write-only files, readable attributes, unreadable ones.
    const nodes = [...ta.values()];
    t.ok(ta.size > 200, `${ta.size} entries`);
    t.ok(nodes.filter(n => n.kind === 'link').length >= 15, `${nodes.filter(n => n.kind === 'link').length} links`);
    t.ok(
      nodes.filter(n => n.kind === 'file' && n.content !== undefined).length > 100,
      `${nodes.filter(n => n.kind === 'file' && n.content !== undefined).length} readable attributes, read`,
    );
    t.ok(
      nodes.some(n => n.kind === 'file' && n.mode === 0o200),
      'write-only files (create, remove, bind)',
    );
    t.ok(
      nodes.some(n => n.kind === 'file' && n.error === 'EIO'),
      'attributes whose read fails (power/autosuspend_delay_ms): same errno',
    );
    t.equal(ta.get(`${T4}/mdev_supported_types/nvidia-222/name`)?.kind, 'file');
    t.match(ta.get(`${T4}/mdev_supported_types/nvidia-222/description`), { content: /^num_heads=4, frl_config=45/ });

    const diffs = diffTrees(ta, tb);
    t.same(diffs.map(show), [], 'A and B are the same tree');
  });

  t.test('one device per parent, the same devices created on the copy: every file identical', async t => {
    await createAll(a, t);
    const cap = path.join(tmp, 'cap-devices.json');
    const r = await capture('--sysfs', a.dir, '-o', cap);
    t.equal(r.code, 0, r.stderr);
    // Devices' vendor files were captured (as templates where they name the device).
    const doc = JSON.parse(await fsp.readFile(cap, 'utf8')) as { parents: Array<{ path: string; deviceAttrs?: Record<string, unknown> }> };
    const attrs = Object.fromEntries(doc.parents.map(p => [path.basename(p.path), p.deviceAttrs]));
    t.same(attrs, {
      '0000:3b:00.0': { 'nvidia/vgpu_params': { value: '', writable: true } },
      mbochs: { 'vendor/memory': '4 MB\n' },
      mdpy: { 'vendor/resolution': '1024x768\n' },
      mtty: { 'vendor/sample_mdev_dev': 'This is MDEV {uuid}\n' },
    });

    const c = await started(t, '--config', cap);
    await createAll(c, t);
    const ta = await walk(a.dir);
    const tc = await walk(c.dir);
    t.ok(
      [...ta.keys()].some(k => k.endsWith(`${DEVICES[0]![1]}/vendor/sample_mdev_dev`)),
      'device files were walked',
    );
    t.same(diffTrees(ta, tc).map(show), [], 'A and C are the same tree');

    // What legitimately differs: a capture is a snapshot, not the vendor's rules.
    t.test('known differences once the trees move on', async t => {
      // 1. Capacity: A's T4 is a one-type-at-a-time framebuffer pool, mbochs a
      //    256 MB pool, mtty a 24-port pool; the capture wrote model "fixed"
      //    with max = what was available then (other T4 types: 0). Removing
      //    the T4 vGPU frees every type on A, only nvidia-230 on C.
      // 2. Device vendor files: captured from one device (mbochs-small's
      //    "4 MB") for every device of the parent; a vendor file that depends
      //    on the type (mbochs vendor/memory, mdpy vendor/resolution) reads
      //    the captured value on C.
      const t4dev = `${T4}/${DEVICES[3]![1]}`;
      const medium = '0c5a3f8e-7b1d-4e2a-9c6f-1a2b3c4d5e05';
      for (const d of [a, c]) {
        t.equal(await writeOnce(d.p(t4dev, 'remove'), '1\n'), 2);
        t.equal(await writeOnce(d.p(MBOCHS, 'mdev_supported_types/mbochs-medium/create'), medium), 36);
      }
      t.equal(await readOnce(a.p(`${T4}/mdev_supported_types/nvidia-222/available_instances`)), '16\n');
      t.equal(await readOnce(c.p(`${T4}/mdev_supported_types/nvidia-222/available_instances`)), '0\n');
      t.equal(await readOnce(a.p(`${MBOCHS}/${medium}/vendor/memory`)), '16 MB\n');
      t.equal(await readOnce(c.p(`${MBOCHS}/${medium}/vendor/memory`)), '4 MB\n');

      // Exactly these: the 12 other T4 types (A: free again; C: max 0 as
      // captured), mbochs-small (A: (256-4-16)/4 = 59; C: 64-1 = 63; medium
      // and large happen to agree by rounding), the medium device's memory.
      const diffs = diffTrees(await walk(a.dir), await walk(c.dir));
      t.same(
        diffs.map(d => d.path),
        [
          ...['222', '223', '224', '225', '226', '227', '228', '229', '231', '232', '233', '234'].map(
            id => `${T4}/mdev_supported_types/nvidia-${id}/available_instances`,
          ),
          `${MBOCHS}/${medium}/vendor/memory`,
          `${MBOCHS}/mdev_supported_types/mbochs-small/available_instances`,
        ],
        'exactly the known differences',
      );
      t.ok(
        diffs.every(d => d.a?.kind === 'file' && d.b?.kind === 'file' && d.a.mode === d.b.mode),
        'only contents differ',
      );
    });
  });
});

t.test('round trip of an SR-IOV host: a10-host.json → capture → its VF parents become the PF entry again', async t => {
  const a = await started(t, '--config', path.join(REPO, 'examples/config/a10-host.json'));
  const cap = path.join(tmp, 'cap-a10.json');
  const r = await capture('--sysfs', a.dir, '-o', cap);
  t.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(await fsp.readFile(cap, 'utf8')) as { parents: unknown[]; pciFunctions: Array<Record<string, any>> };
  t.same(doc.parents, [], 'no plain parent: the 8 VF parents went into the PF');
  const f = doc.pciFunctions[0]!;
  t.equal(f.path, 'devices/pci0000:40/0000:40:01.1/0000:41:00.0');
  t.same(
    { ...f.sriov, vf: undefined },
    { totalVfs: 24, offset: 4, stride: 1, vfDevice: 0x2236, numVfs: 8, vf: undefined },
    'sriov_* read back',
  );
  t.same([f.sriov.vf.driver, f.sriov.vf.iommuGroupBase, f.sriov.vf.mdev.perVf], ['nvidia', 200, 1]);
  t.match(f.sriov.vf.attrs.uevent.value, /PCI_SLOT_NAME=\{address\}\n/, "VF 0's address became {address}");
  const b = await started(t, '--config', cap);
  t.same(diffTrees(await walk(a.dir), await walk(b.dir)).map(show), [], 'the same tree, VFs, links and types included');
});

t.test('no mount of this file is left', async t => {
  const mounts = await fsp.readFile('/proc/mounts', 'utf8');
  const left = mounts.split('\n').filter(l => l.includes('fuse') && ours.some(d => l.split(' ')[1] === d));
  t.same(left, [], 'grep fuse /proc/mounts: none of ours');
  t.equal(ours.length, 5, 'A, B and C, and the SR-IOV pair, were checked');
});
