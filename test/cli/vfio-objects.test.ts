// The VFIO objects of a bound mdev through a real mount (modern profile,
// docs/abi.md#vfio-objects, #uevent-order): <uuid>/vfio-dev/vfio<k>, the group char device
// devices/virtual/vfio/<N>, their class links, and the --uevents stream order.
import t from 'tap';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startDaemon, mdevfsMount, sh, FIXTURES } from '../helpers/daemon.js';
import { writeOnce, readOnce, one } from '../helpers/sys.js';
import { P, TA } from '../fixtures/test-plugin.js';

const PLUGIN = `${FIXTURES}/test-plugin.ts`;
const U1 = '83b8f4f2-509f-382f-3c1e-e6bfe0fa1001';

t.test('modern mount: vfio-dev and the VFIO group char device', async t => {
  const tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'mdevfs-uevents-'));
  t.teardown(() => fsp.rm(tmp, { recursive: true, force: true }));
  const ue = path.join(tmp, 'uevents.jsonl');
  const d = await startDaemon(t, { command: mdevfsMount('--driver', PLUGIN, '--uevents', ue) });
  const p = d.p;
  const link = (rel: string) => one(['readlink', p(rel)]);
  const events = async () =>
    (await fsp.readFile(ue, 'utf8'))
      .split('\n')
      .filter(Boolean)
      .map(l => JSON.parse(l) as Record<string, string>);

  t.equal(await writeOnce(p(`${TA}/create`), `${U1}\n`), 37);
  const V = `${P}/${U1}/vfio-dev/vfio0`;
  const G = 'devices/virtual/vfio/0';

  // Layout
  const found = await sh(`cd ${p('')} && find ${V} ${G} class/vfio class/vfio-dev | sort`);
  t.equal(found.stderr, '');
  t.same(
    found.stdout.split('\n').filter(Boolean),
    [
      'class/vfio',
      'class/vfio-dev',
      'class/vfio-dev/vfio0',
      'class/vfio/0',
      G,
      `${G}/dev`,
      `${G}/power`,
      `${G}/power/autosuspend_delay_ms`,
      `${G}/power/control`,
      `${G}/power/runtime_active_time`,
      `${G}/power/runtime_status`,
      `${G}/power/runtime_suspended_time`,
      `${G}/subsystem`,
      `${G}/uevent`,
      V,
      `${V}/dev`,
      `${V}/device`,
      `${V}/power`,
      `${V}/power/autosuspend_delay_ms`,
      `${V}/power/control`,
      `${V}/power/runtime_active_time`,
      `${V}/power/runtime_status`,
      `${V}/power/runtime_suspended_time`,
      `${V}/subsystem`,
      `${V}/uevent`,
    ].sort(),
  );

  // Link texts (kernfs relative rule) and where they resolve
  t.equal(await link(`${V}/subsystem`), '../../../../../../../class/vfio-dev');
  t.equal(await link(`${V}/device`), `../../../${U1}`);
  t.equal(await link('class/vfio-dev/vfio0'), `../../${V}`);
  t.equal(await link(`${G}/subsystem`), '../../../../class/vfio');
  t.equal(await link('class/vfio/0'), `../../${G}`);
  const real = await sh(`readlink -f ${p('class/vfio-dev/vfio0/device')}; readlink -f ${p('class/vfio/0')}`);
  t.equal(real.stdout, `${p(P, U1)}\n${p(G)}\n`);

  // Contents and modes
  t.equal(await readOnce(p(`${V}/dev`)), '510:0\n');
  t.equal(await readOnce(p(`${V}/uevent`)), 'MAJOR=510\nMINOR=0\nDEVNAME=vfio/devices/vfio0\n');
  t.equal(await readOnce(p(`${G}/dev`)), '511:0\n');
  t.equal(await readOnce(p(`${G}/uevent`)), 'MAJOR=511\nMINOR=0\nDEVNAME=vfio/0\n');
  t.equal(await readOnce(p(`${V}/power/runtime_status`)), 'unsupported\n');
  const modes = await sh(`cd ${p('')} && stat -c '%a %s' ${V}/dev ${V}/uevent ${G}/dev ${G}/uevent && stat -c '%a' ${V} ${G}`);
  t.equal(modes.stdout, '444 4096\n644 4096\n444 4096\n644 4096\n755\n755\n');

  // find over the whole tree terminates, without errors (no loops through the new links)
  const all = await sh(`find ${p('')} > /dev/null; echo rc=$?`, 60_000);
  t.equal(all.stderr, '');
  t.equal(all.stdout, 'rc=0\n');

  // Remove: everything gone when the write returns
  t.equal(await writeOnce(p(`${P}/${U1}/remove`), '1'), 1);
  for (const rel of [`${P}/${U1}`, G, 'devices/virtual/vfio', 'class/vfio', 'class/vfio-dev']) {
    t.same(await one(['lstat', p(rel)]), { errno: 'ENOENT' }, `${rel} gone`);
  }

  // The --uevents stream, in order, keys in the kernel's order
  const stream = await events();
  // The vendor drivers' own kobjects came first, when the plugin registered them (bus_add_driver).
  t.same(
    stream.filter(e => e.SUBSYSTEM === 'drivers').map(e => `${e.ACTION} ${e.DEVPATH} ${e.SEQNUM}`),
    ['add /bus/mdev/drivers/mtest 1', 'add /bus/mdev/drivers/intel_vgpu_mdev 3'],
  );
  const evs = stream.filter(e => e.SUBSYSTEM !== 'mtest' && e.SUBSYSTEM !== 'drivers' && e.ACTION !== 'change');
  const DP = `/${P}/${U1}`;
  t.same(
    evs.map(e => `${e.ACTION} ${e.DEVPATH} ${e.SUBSYSTEM}`),
    [
      `add ${DP} mdev`,
      'add /devices/virtual/vfio/0 vfio',
      `add ${DP}/vfio-dev/vfio0 vfio-dev`,
      `bind ${DP} mdev`,
      `remove ${DP}/vfio-dev/vfio0 vfio-dev`,
      'remove /devices/virtual/vfio/0 vfio',
      `unbind ${DP} mdev`,
      `remove ${DP} mdev`,
    ],
  );
  t.same(Object.keys(evs[1]!), ['ACTION', 'DEVPATH', 'SUBSYSTEM', 'MAJOR', 'MINOR', 'DEVNAME', 'SEQNUM']);
  t.same(evs[2], {
    ACTION: 'add',
    DEVPATH: `${DP}/vfio-dev/vfio0`,
    SUBSYSTEM: 'vfio-dev',
    MAJOR: '510',
    MINOR: '0',
    DEVNAME: 'vfio/devices/vfio0',
    SEQNUM: evs[2]!.SEQNUM,
  });
  const seqs = evs.map(e => Number(e.SEQNUM));
  t.same(
    seqs,
    [...seqs].sort((a, b) => a - b),
    'SEQNUM increasing',
  );
});
