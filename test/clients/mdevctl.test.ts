// Debian's real, unmodified mdevctl 1.2.0 against the tree, through
// `mdevfs run` (mdevctl/mdevctl at v1.2.0: src/main.rs, src/mdev.rs): every
// command it has, checked against the tree read in the same namespace and
// against mdevctl's exact messages.
// Each scenario is one run (one daemon), its steps run in order inside it.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { PYTHON } from '../helpers/util.js';
import { NVIDIA, mdevctl, mdevfsRun, runSteps, snapshot, unmountLeftovers, type Step } from '../run/helpers.js';

t.teardown(unmountLeftovers);

const version = (() => {
  try {
    return execFileSync('mdevctl', ['--version'], { encoding: 'utf8' }).trim();
  } catch {
    return '';
  }
})();
if (!/^mdevctl 1\.2\./.test(version)) {
  t.comment(`mdevctl 1.2.x is needed for these tests (found: ${version || 'none'})`);
}

const U1 = '11111111-1111-4111-8111-111111111111';
const U2 = '22222222-2222-4222-8222-222222222222';
const U3 = '33333333-3333-4333-8333-333333333333';
const U9 = '99999999-9999-4999-8999-999999999999';

type TypeInfo = { available_instances: number; device_api: string; name?: string; description?: string };
type Tree = Record<string, Record<string, TypeInfo>>;

/** Every parent's types as the tree shows them: what mdevctl types reads (mdevctl's get_supported_types). */
const TREE_PY = String.raw`
import json, os
root = '/sys/class/mdev_bus'
out = {}
for parent in sorted(os.listdir(root)):
    tdir = os.path.join(root, parent, 'mdev_supported_types')
    types = {}
    for ty in sorted(os.listdir(tdir)):
        d = os.path.join(tdir, ty)
        rd = lambda f: open(os.path.join(d, f)).read()
        info = {'available_instances': int(rd('available_instances').strip()), 'device_api': rd('device_api').strip()}
        for f in ('name', 'description'):
            if os.path.exists(os.path.join(d, f)):
                info[f] = rd(f)
        types[ty] = info
    out[parent] = types
print(json.dumps(out))
`;
const readTree: Step = { argv: [PYTHON, '-c', TREE_PY] };

/** mdevctl 1.2.0's `types` text for a tree (its `types` command, src/main.rs). */
function typesText(tree: Tree): string {
  let s = '';
  for (const [parent, types] of Object.entries(tree)) {
    s += `${parent}\n`;
    for (const [id, ty] of Object.entries(types)) {
      s += `  ${id}\n    Available instances: ${ty.available_instances}\n    Device API: ${ty.device_api}\n`;
      if (ty.name !== undefined) s += `    Name: ${ty.name.trim()}\n`;
      if (ty.description !== undefined) s += `    Description: ${ty.description.trim().split('\n').join(', ')}\n`;
    }
  }
  return `${s}\n`;
}

/** mdevctl 1.2.0's `types --dumpjson` for a tree. */
function typesJson(tree: Tree): unknown {
  if (Object.keys(tree).length === 0) return [];
  const o: Record<string, unknown[]> = {};
  for (const [parent, types] of Object.entries(tree)) {
    o[parent] = Object.entries(types).map(([id, ty]) => {
      const v: Record<string, unknown> = { available_instances: ty.available_instances, device_api: ty.device_api };
      if (ty.name !== undefined) v.name = ty.name.trim();
      if (ty.description !== undefined) v.description = ty.description.trim().split('\n').join(', ');
      return { [id]: v };
    });
  }
  return [o];
}

const err = (msg: string) => `Error: ${msg}\n`;

t.test('types: text and --dumpjson are exactly the tree read in the same namespace', async t => {
  const { results: r } = await runSteps(t, [
    readTree,
    mdevctl('types'),
    mdevctl('types', '--dumpjson'),
    mdevctl('types', '-p', 'mtty'),
    mdevctl('types', '-p', 'mdpy', '--dumpjson'),
    // A device takes instances: mdpy's core counter is per parent, mtty's pool counts ports.
    mdevctl('start', '-u', U1, '-p', 'mdpy', '-t', 'mdpy-vga'),
    mdevctl('start', '-u', U2, '-p', 'mtty', '-t', 'mtty-2'),
    readTree,
    mdevctl('types'),
  ]);
  const tree = JSON.parse(r[0]!.out) as Tree;
  t.same(Object.keys(tree), ['mbochs', 'mdpy', 'mtty'], 'the sample drivers');
  t.equal(r[1]!.code, 0, r[1]!.err);
  t.equal(r[1]!.out, typesText(tree), 'types (text)');
  t.same(JSON.parse(r[2]!.out), typesJson(tree), 'types --dumpjson');
  t.equal(r[3]!.out, typesText({ mtty: tree.mtty! }), 'types -p mtty');
  t.notMatch(r[3]!.out, /Description/, 'mtty has no description file, so no Description line');
  t.same(JSON.parse(r[4]!.out), typesJson({ mdpy: tree.mdpy! }), 'types -p mdpy --dumpjson');
  t.match(tree.mdpy!['mdpy-vga']!.description, /\n$/, 'the description file ends in a newline; mdevctl trims it');

  t.equal(r[5]!.code, 0, r[5]!.err);
  t.equal(r[6]!.code, 0, r[6]!.err);
  const after = JSON.parse(r[7]!.out) as Tree;
  t.same(
    Object.values(after.mdpy!).map(ty => ty.available_instances),
    [3, 3, 3],
    'mdpy: 4 per parent, one used',
  );
  t.equal(after.mtty!['mtty-1']!.available_instances, 22, 'mtty: 24 ports, a dual-port device holds 2');
  t.equal(after.mtty!['mtty-2']!.available_instances, 11);
  t.equal(r[8]!.out, typesText(after), 'types follows available_instances');
});

t.test('start -u -p -t, list/lsmdev (-u, -p, -v, --dumpjson), stop, and the error paths', async t => {
  const { results: r } = await runSteps(t, [
    /* 0 */ mdevctl('start', '-u', U1, '-p', 'mdpy', '-t', 'mdpy-vga'),
    /* 1 */ mdevctl('start', '-p', 'mtty', '-t', 'mtty-2'),
    /* 2 */ {
      sh: `readlink /sys/bus/mdev/devices/${U1}; readlink /sys/bus/mdev/devices/${U1}/mdev_type; ls /sys/class/mdev_bus/mdpy/mdev_supported_types/mdpy-vga/devices`,
    },
    /* 3 */ mdevctl('list'),
    /* 4 */ { argv: ['lsmdev'] },
    /* 5 */ mdevctl('list', '-u', U1),
    /* 6 */ mdevctl('list', '-p', 'mtty'),
    /* 7 */ mdevctl('list', '-v'),
    /* 8 */ mdevctl('list', '--dumpjson'),
    /* 9 */ mdevctl('list', '-u', U1, '--dumpjson'),
    /* 10 */ { argv: ['lsmdev', '-p', 'mdpy', '--dumpjson'] },
    // error paths
    /* 11 */ mdevctl('start', '-u', U1, '-p', 'mdpy', '-t', 'mdpy-vga'),
    /* 12 */ mdevctl('start', '-u', U1, '-p', 'mtty', '-t', 'mtty-1'),
    /* 13 */ mdevctl('start', '-u', U9, '-p', 'nope', '-t', 'mdpy-vga'),
    /* 14 */ mdevctl('start', '-u', U9, '-p', 'MDPY', '-t', 'mdpy-vga'),
    /* 15 */ mdevctl('start', '-u', U9, '-p', 'mdpy', '-t', 'mdpy-nope'),
    /* 16 */ mdevctl('start', '-u', U2, '-p', 'mdpy', '-t', 'mdpy-hd'),
    /* 17 */ mdevctl('start', '-u', U3, '-p', 'mdpy', '-t', 'mdpy-xga'),
    /* 18 */ mdevctl('start', '-p', 'mdpy', '-t', 'mdpy-hd'),
    /* 19 */ mdevctl('start', '-p', 'mdpy', '-t', 'mdpy-hd'),
    /* 20 */ { sh: 'cat /sys/class/mdev_bus/mdpy/mdev_supported_types/*/available_instances' },
    // the kernel's own answer to a UUID already running, under mdevctl's pre-check (docs/abi.md#create: EEXIST across parents)
    /* 21 */ {
      argv: [
        PYTHON,
        '-c',
        `import os\ntry:\n  fd = os.open('/sys/class/mdev_bus/mbochs/mdev_supported_types/mbochs-small/create', os.O_WRONLY | os.O_TRUNC)\n  os.write(fd, b'${U1}')\nexcept OSError as e:\n  print(os.strerror(e.errno))`,
      ],
    },
    // stop
    /* 22 */ mdevctl('stop', '-u', U1),
    /* 23 */ {
      sh: `ls /sys/bus/mdev/devices; test -e /sys/devices/virtual/mdpy/mdpy/${U1}; echo $?; cat /sys/class/mdev_bus/mdpy/mdev_supported_types/mdpy-vga/available_instances`,
    },
    /* 24 */ mdevctl('stop', '-u', U1),
    /* 25 */ mdevctl('list', '-u', U1),
  ]);
  t.equal(r[0]!.code, 0, r[0]!.err);
  t.equal(r[0]!.out, '', 'with -u, start prints nothing');
  t.equal(r[1]!.code, 0, r[1]!.err);
  const gen = r[1]!.out.trim();
  t.match(gen, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, 'without -u it prints the UUID it made');
  t.equal(r[2]!.out, `../../../devices/virtual/mdpy/mdpy/${U1}\n../mdev_supported_types/mdpy-vga\n${U1}\n`, 'the device is in the tree');

  t.equal(r[3]!.out, `${U1} mdpy mdpy-vga manual\n${gen} mtty mtty-2 manual\n\n`, 'list (by parent)');
  t.equal(r[4]!.out, r[3]!.out, 'lsmdev is list');
  t.equal(r[5]!.out, `${U1} mdpy mdpy-vga manual\n\n`, 'list -u');
  t.equal(r[6]!.out, `${gen} mtty mtty-2 manual\n\n`, 'list -p');
  t.equal(r[7]!.out, r[3]!.out, 'list -v: no attrs to show');
  t.same(
    JSON.parse(r[8]!.out),
    [
      {
        mdpy: [{ [U1]: { mdev_type: 'mdpy-vga', start: 'manual', attrs: [] } }],
        mtty: [{ [gen]: { mdev_type: 'mtty-2', start: 'manual', attrs: [] } }],
      },
    ],
    'list --dumpjson',
  );
  t.same(JSON.parse(r[9]!.out), { mdev_type: 'mdpy-vga', start: 'manual', attrs: [] }, 'list -u --dumpjson: one bare object');
  t.same(JSON.parse(r[10]!.out), [{ mdpy: [{ [U1]: { mdev_type: 'mdpy-vga', start: 'manual', attrs: [] } }] }], 'lsmdev -p --dumpjson');

  const fails = (i: number, msg: string, what: string) => {
    t.equal(r[i]!.code, 1, `${what}: exit 1`);
    t.equal(r[i]!.err, err(msg), what);
  };
  fails(11, 'Device already exists', 'a UUID already running');
  fails(12, 'Device exists under different parent', 'a UUID running on another parent');
  fails(13, "Unable to find parent device 'nope'", 'unknown parent');
  fails(14, "Unable to find parent device 'MDPY'. Did you mean 'mdpy'?", 'parent differing in case');
  fails(15, 'Parent mdpy does not support mdev type mdpy-nope', 'unknown type');
  t.equal(r[16]!.code + r[17]!.code + r[18]!.code, 0, 'three more mdpy devices: the fourth');
  fails(19, 'No available instances of mdpy-hd on mdpy', 'no instances left');
  t.equal(r[20]!.out, '0\n0\n0\n', 'mdpy: every type at 0');
  t.equal(r[21]!.out, 'File exists\n', 'the raw create of a running UUID on another parent: EEXIST');

  t.equal(r[22]!.code, 0, r[22]!.err);
  t.notMatch(r[23]!.out, new RegExp(U1), 'stop: gone from bus/mdev/devices');
  t.match(r[23]!.out, /^1\n1\n$/m, 'and from the parent; one instance back');
  t.equal(r[24]!.code, 1);
  t.equal(
    r[24]!.err,
    `Error: Error removing device ${U1}\n\nCaused by:\n    No such file or directory (os error 2)\n`,
    'stop of a device that is not there',
  );
  t.equal(r[25]!.out, '\n', 'list -u of a stopped device: nothing');
});

t.test(
  "define / modify / undefine in the scratch /etc/mdevctl.d, start of a defined device, start-parent-mdevs; the host's /etc untouched",
  async t => {
    const hostBefore = await snapshot('/etc/mdevctl.d');
    const cfg = (parent: string, u: string) => ({ sh: `cat /etc/mdevctl.d/${parent}/${u}` });
    const { results: r } = await runSteps(t, [
      /* 0 */ mdevctl('define', '-u', U1, '-p', 'mdpy', '-t', 'mdpy-vga'),
      /* 1 */ mdevctl('define', '-u', U1, '-p', 'mdpy', '-t', 'mdpy-vga'),
      /* 2 */ mdevctl('define', '-u', U2, '-p', 'mtty', '-t', 'mtty-2', '--auto'),
      /* 3 */ { sh: 'cd /etc/mdevctl.d && find . -type f | sort' },
      /* 4 */ cfg('mdpy', U1),
      /* 5 */ mdevctl('modify', '-u', U1, '--auto'),
      /* 6 */ mdevctl('modify', '-u', U1, '-t', 'mdpy-xga'),
      /* 7 */ mdevctl('modify', '-u', U1, '--addattr=vendor/resolution', '--value=1024x768'),
      /* 8 */ cfg('mdpy', U1),
      /* 9 */ mdevctl('list', '-d'),
      /* 10 */ mdevctl('list', '-d', '-v'),
      /* 11 */ mdevctl('list', '-d', '--dumpjson'),
      /* 12 */ mdevctl('modify', '-u', U1, '--delattr', '--index=0'),
      /* 13 */ mdevctl('modify', '-u', U1, '--manual'),
      /* 14 */ cfg('mdpy', U1),
      // start of a defined device: parent and type come from the definition
      /* 15 */ mdevctl('start', '-u', U1),
      /* 16 */ { sh: `readlink /sys/bus/mdev/devices/${U1}/mdev_type` },
      /* 17 */ mdevctl('list'),
      /* 18 */ mdevctl('list', '-d'),
      // start-parent-mdevs starts the auto ones of that parent (what udev would run)
      /* 19 */ mdevctl('start-parent-mdevs', 'mtty'),
      /* 20 */ { sh: `readlink /sys/bus/mdev/devices/${U2}` },
      /* 21 */ mdevctl('list'),
      // define -u of a running device takes parent and type from sysfs
      /* 22 */ mdevctl('start', '-u', U3, '-p', 'mbochs', '-t', 'mbochs-small'),
      /* 23 */ mdevctl('define', '-u', U3),
      /* 24 */ cfg('mbochs', U3),
      /* 25 */ mdevctl('undefine', '-u', U2),
      /* 26 */ { sh: 'cd /etc/mdevctl.d && find . -type f | sort' },
      /* 27 */ mdevctl('list', '-d'),
      /* 28 */ mdevctl('list'),
      /* 29 */ mdevctl('start', '-u', U9),
    ]);
    const ok = (...is: number[]) => {
      for (const i of is) t.equal(r[i]!.code, 0, `step ${i}: ${r[i]!.err}`);
    };
    ok(0, 2, 5, 6, 7, 12, 13, 15, 19, 22, 23, 25);
    t.equal(r[1]!.code, 1);
    t.equal(r[1]!.err, err(`Device ${U1} on mdpy already defined`), 'a second define');
    t.equal(r[3]!.out, `./mdpy/${U1}\n./mtty/${U2}\n`, 'one file per definition: <parent>/<uuid>');
    t.same(JSON.parse(r[4]!.out), { mdev_type: 'mdpy-vga', start: 'manual', attrs: [] });
    t.same(
      JSON.parse(r[8]!.out),
      { mdev_type: 'mdpy-xga', start: 'auto', attrs: [{ 'vendor/resolution': '1024x768' }] },
      'modify: auto, type, attr',
    );
    t.equal(r[9]!.out, `${U1} mdpy mdpy-xga auto\n${U2} mtty mtty-2 auto\n\n`, 'list -d');
    t.equal(
      r[10]!.out,
      `${U1} mdpy mdpy-xga auto\n  Attrs:\n    @{0}: {"vendor/resolution":"1024x768"}\n${U2} mtty mtty-2 auto\n\n`,
      'list -d -v',
    );
    t.same(JSON.parse(r[11]!.out), [
      {
        mdpy: [{ [U1]: { mdev_type: 'mdpy-xga', start: 'auto', attrs: [{ 'vendor/resolution': '1024x768' }] } }],
        mtty: [{ [U2]: { mdev_type: 'mtty-2', start: 'auto', attrs: [] } }],
      },
    ]);
    t.same(JSON.parse(r[14]!.out), { mdev_type: 'mdpy-xga', start: 'manual', attrs: [] }, 'delattr, manual');
    t.equal(r[15]!.out, '', 'start -u of a defined device');
    t.equal(r[16]!.out, '../mdev_supported_types/mdpy-xga\n', 'created with the defined type');
    t.equal(r[17]!.out, `${U1} mdpy mdpy-xga manual (defined)\n\n`, 'list marks it defined');
    t.equal(r[18]!.out, `${U1} mdpy mdpy-xga manual (active)\n${U2} mtty mtty-2 auto\n\n`, 'list -d marks it active');
    t.equal(r[20]!.out, `../../../devices/virtual/mtty/mtty/${U2}\n`, 'start-parent-mdevs started the auto definition');
    t.equal(r[21]!.out, `${U1} mdpy mdpy-xga manual (defined)\n${U2} mtty mtty-2 auto (defined)\n\n`);
    t.same(JSON.parse(r[24]!.out), { mdev_type: 'mbochs-small', start: 'manual', attrs: [] }, 'define -u of a running device');
    t.equal(r[26]!.out, `./mbochs/${U3}\n./mdpy/${U1}\n`, 'undefine removed the file');
    t.equal(r[27]!.out, `${U3} mbochs mbochs-small manual (active)\n${U1} mdpy mdpy-xga manual (active)\n\n`);
    t.match(r[28]!.out, new RegExp(`^${U2} mtty mtty-2 manual$`, 'm'), 'undefine leaves the running device, now transient');
    t.equal(r[29]!.code, 1);
    t.equal(r[29]!.err, err('Device is insufficiently specified'), 'start -u of an unknown, undefined UUID');

    t.equal(await snapshot('/etc/mdevctl.d'), hostBefore, "the host's /etc/mdevctl.d is untouched");
  },
);

t.test('NVIDIA vGPU: attributes through mdevctl, and the one-type-per-GPU rule as mdevctl sees it', async t => {
  const P = '0000:3b:00.0';
  const { results: r } = await runSteps(
    t,
    [
      /* 0 */ mdevctl('define', '-u', U1, '-p', P, '-t', 'nvidia-231', '--auto'),
      /* 1 */ mdevctl('modify', '-u', U1, '--addattr=nvidia/vgpu_params', '--value=frame_rate_limiter=0'),
      /* 2 */ mdevctl('start-parent-mdevs', P),
      /* 3 */ { argv: ['cat', `/sys/bus/mdev/devices/${U1}/nvidia/vgpu_params`] },
      /* 4 */ mdevctl('list', '-v'),
      /* 5 */ mdevctl('types', '-p', P, '--dumpjson'),
      /* 6 */ mdevctl('start', '-u', U2, '-p', P, '-t', 'nvidia-230'),
      /* 7 */ mdevctl('start', '-u', U2, '-p', '0000:d8:00.0', '-t', 'nvidia-230'),
      /* 8 */ mdevctl('define', '-u', U3, '-p', P, '-t', 'nvidia-231'),
      /* 9 */ mdevctl('modify', '-u', U3, '--addattr=nvidia/vgpu_params', '--value=not valid'),
      /* 10 */ mdevctl('start', '-u', U3),
      /* 11 */ { sh: `ls /sys/bus/mdev/devices | sort` },
    ],
    ['--driver', NVIDIA],
  );
  t.equal(r[2]!.code, 0, r[2]!.err);
  t.equal(r[3]!.out, 'frame_rate_limiter=0\n', 'mdevctl wrote the attribute into the new device');
  t.equal(r[4]!.out, `${U1} ${P} nvidia-231 auto (defined)\n  Attrs:\n    @{0}: {"nvidia/vgpu_params":"frame_rate_limiter=0"}\n\n`);
  const types = (JSON.parse(r[5]!.out) as Array<Record<string, Array<Record<string, TypeInfo>>>>)[0]![P]!;
  const avail = Object.fromEntries(types.map(o => Object.entries(o)[0]!).map(([id, v]) => [id, v.available_instances]));
  t.equal(avail['nvidia-231'], 7, 'T4-2Q: 8 per GPU, one running');
  t.ok(
    Object.entries(avail).every(([id, n]) => id === 'nvidia-231' || n === 0),
    'every other type reads 0',
  );
  t.equal(r[6]!.code, 1);
  t.equal(r[6]!.err, err(`No available instances of nvidia-230 on ${P}`), 'mdevctl refuses another type on a busy GPU');
  t.equal(r[7]!.code, 0, 'the other GPU is free');
  t.equal(r[10]!.code, 1, 'an attribute the driver rejects fails the start');
  t.match(r[10]!.err, /^Error: /);
  t.equal(r[11]!.out, `${U1}\n${U2}\n`, 'and the failed device was removed again');
});

t.test('mdevctl straight as the command: stdout and the exit status pass through', async t => {
  const [types, fail] = await Promise.all([
    mdevfsRun(t, ['--', 'mdevctl', 'types', '-p', 'mdpy']),
    mdevfsRun(t, ['--', 'mdevctl', 'start', '-u', U1, '-p', 'nope', '-t', 'x']),
  ]);
  t.equal(types.code, 0);
  // eslint-disable-next-line no-regex-spaces -- mdevctl's indentation, as printed
  t.match(types.stdout, /^mdpy\n  mdpy-hd\n    Available instances: 4\n    Device API: vfio-pci\n/);
  t.equal(fail.code, 1);
  t.equal(fail.stderr, err("Unable to find parent device 'nope'"));
});
