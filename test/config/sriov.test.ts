// A declarative SR-IOV host (pciFunctions, examples/config/a10-host.json):
// the PF and its VFs, each VF an mdev parent sharing the GPU's capacity with
// its siblings, perVf, refuseDisableErrno; a bad SR-IOV description is
// refused with every problem named.
import t from 'tap';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { validateConfig } from '../../src/config/validate.js';
import { freshUuid, loaded, rejectsErrno } from './helpers.js';

const A10 = JSON.parse(await readFile(fileURLToPath(new URL('../../examples/config/a10-host.json', import.meta.url)), 'utf8'));
const PF = '0000:41:00.0';

t.test('the A10 host: a PF with 8 VFs, each an mdev parent; the GPU capacity is shared, one vGPU per VF', async t => {
  const core = await loaded(A10);
  const pf = core.pciDevice(PF)!;
  t.equal(pf.numVfs, 8);
  t.same(
    [...core.parents()].map(p => p.name),
    pf.virtfns.map(v => v.name),
    'the parents are the VFs',
  );
  t.same(
    pf.virtfns.map(v => v.device.iommuGroup),
    [200, 201, 202, 203, 204, 205, 206, 207],
    'iommuGroupBase + index',
  );
  const vf = (i: number) => core.parent(pf.virtfns[i]!.name)!;
  const type = (i: number, id: string) => vf(i).types.find(x => x.id === `nvidia-${id}`)!;
  t.equal(core.availableInstances(type(0, '593')), 1, 'perVf 1: a VF offers at most one');
  await core.create(type(0, '593'), freshUuid());
  t.equal(core.availableInstances(type(0, '593')), 0, 'the VF holding one: 0');
  t.equal(core.availableInstances(type(1, '593')), 1, 'a sibling: 1 of the running type');
  t.equal(core.availableInstances(type(1, '591')), 0, 'and none of another (oneTypeAtATime, GPU-wide)');
  await rejectsErrno(t, core.create(type(0, '593'), freshUuid()), 'ENOSPC', 'a second on one VF');
  await rejectsErrno(t, core.create(type(1, '591'), freshUuid()), 'EINVAL', 'another type on a sibling');
  for (let i = 1; i < 6; i++) await core.create(type(i, '593'), freshUuid());
  t.equal(core.availableInstances(type(6, '593')), 0, 'six A10-4Q fill the 24 GB pool');
  await rejectsErrno(t, core.setNumVfs(pf, 0), 'EBUSY', 'refuseDisableErrno while vGPUs exist');
  for (const d of [...core.devices()]) await core.remove(d);
  await core.setNumVfs(pf, 0);
  t.same([...core.parents()], [], 'disabled: no VF, no parent');
  await core.setNumVfs(pf, 2);
  t.equal([...core.parents()].length, 2);
  t.equal(core.availableInstances(type(0, '597')), 1, 'capacity back: A10-24Q fits again');
  await core.shutdown();
  t.same([...core.pciDevices()], [], 'unload removes the PF');
});

t.test('bad SR-IOV descriptions: every problem named', async t => {
  const bad = structuredClone(A10);
  const f = bad.pciFunctions[0];
  f.path = 'devices/pci0000:40/gpu';
  f.sriov.totalVfs = 70000;
  f.sriov.numVfs = 30;
  f.sriov.stride = 0;
  delete f.sriov.vf.driver;
  f.sriov.vf.attrs.physfn = 'x';
  f.sriov.vf.attrs.label = '{uuid}';
  t.same(
    validateConfig(bad)
      .map(i => i.path)
      .sort(),
    [
      'pciFunctions[0].path',
      'pciFunctions[0].sriov.stride',
      'pciFunctions[0].sriov.totalVfs',
      'pciFunctions[0].sriov.vf.attrs.label',
      'pciFunctions[0].sriov.vf.attrs.physfn',
      'pciFunctions[0].sriov.vf.mdev',
    ],
  );
  const clash = structuredClone(A10);
  clash.parents = [
    {
      ...structuredClone(
        JSON.parse(await readFile(fileURLToPath(new URL('../fixtures/config/mtty-fixed.json', import.meta.url)), 'utf8')).parents[0],
      ),
      path: `devices/pci0000:40/0000:40:01.1/${PF}`,
    },
  ];
  t.match(
    validateConfig(clash).map(i => `${i.path}: ${i.message}`),
    [/^parents\[0\]\.path: .*PCI function/],
    "a parent may not take a PCI function's name",
  );
});
