// SR-IOV in the core (src/core/pci-devices.ts): sriov_numvfs_store's rules in
// its order (drivers/pci/iov.c), the VFs' addresses from offset and stride,
// and the uevents of enabling and disabling VFs in the kernel's order
// (sriov_add_vfs → pci_iov_add_virtfn; sriov_del_vfs → pci_iov_remove_virtfn).
import t from 'tap';
import type { PciDevice, PciDeviceSpec, SriovSpec } from '../../src/core/api.js';
import { vfAddress } from '../../src/core/api/pci.js';
import { errnoOf, harness } from './helpers.js';

const PF = '0000:41:00.0';
const uevent = (dev: PciDevice) => `DRIVER=${dev.driver ?? ''}\nPCI_SLOT_NAME=${dev.name}\n`;

function pfSpec(sriov: Partial<SriovSpec> = {}): PciDeviceSpec {
  return {
    path: `devices/pci0000:40/0000:40:01.1/${PF}`,
    driver: 'nvidia',
    iommuGroup: 30,
    attrs: [{ attrs: [{ name: 'uevent', show: uevent }] }],
    sriov: {
      totalVfs: 8,
      offset: 4,
      stride: 1,
      vfDevice: 0x2236,
      vf: (_pf, i) => ({ driver: 'nvidia', iommuGroup: 200 + i, attrs: [{ attrs: [{ name: 'uevent', show: uevent }] }] }),
      configure() {},
      ...sriov,
    },
  };
}

t.test('VF addresses: RID(PF) + offset + index × stride, carried into the next device and bus', async t => {
  t.equal(vfAddress(PF, 4, 1, 0), '0000:41:00.4');
  t.equal(vfAddress(PF, 4, 1, 4), '0000:41:01.0');
  t.equal(vfAddress('0000:3b:00.0', 0x80, 2, 3), '0000:3b:10.6');
  t.equal(vfAddress('0000:41:1f.7', 1, 1, 0), '0000:42:00.0', 'past devfn ff: the next bus (pci_iov_virtfn_bus)');
  t.throws(() => vfAddress('0000:ff:1f.7', 1, 1, 0), RangeError);
});

t.test('sriov_numvfs_store rules, in its order', async t => {
  const h = harness();
  const calls: number[] = [];
  const pf = await h.core.host.addPciDevice(pfSpec({ configure: (_pf, n) => void calls.push(n) }));
  const core = h.core;
  const p = core.pciDevice(pf.name)!;
  t.equal(await errnoOf(core.setNumVfs(p, 9)), 'ERANGE', 'above sriov_totalvfs');
  await core.setNumVfs(p, 0);
  t.same(calls, [], 'the current value: nothing, not even sriov_configure');
  await core.setNumVfs(p, 3);
  t.same(calls, [3]);
  t.same(
    pf.virtfns.map(v => [v.name, v.vfIndex, v.physfn?.name, v.driver]),
    [
      ['0000:41:00.4', 0, PF, 'nvidia'],
      ['0000:41:00.5', 1, PF, 'nvidia'],
      ['0000:41:00.6', 2, PF, 'nvidia'],
    ],
  );
  t.equal(await errnoOf(core.setNumVfs(p, 2)), 'EBUSY', 'non-zero to another non-zero');
  t.equal(pf.numVfs, 3, 'unchanged');
  t.same(calls, [3], 'refused before sriov_configure');
  await core.setNumVfs(p, 0);
  t.same(calls, [3, 0]);
  t.equal(pf.numVfs, 0);
  t.same(
    [...core.pciDevices()].map(d => d.name),
    [PF],
    'the VFs are gone',
  );
});

t.test('ENOENT without a driver with sriov_configure; the driver may refuse and nothing changes', async t => {
  const h = harness();
  const noConfigure = await h.core.host.addPciDevice({ ...pfSpec(), sriov: { ...pfSpec().sriov!, configure: undefined } });
  t.equal(await errnoOf(h.core.setNumVfs(h.core.pciDevice(noConfigure.name)!, 1)), 'ENOENT');
  const h2 = harness();
  let refuse = false;
  const pf = await h2.core.host.addPciDevice(
    pfSpec({
      numVfs: 2,
      configure: () => {
        if (refuse) throw Object.assign(new Error('in use'), { errno: 'EBUSY' });
      },
    }),
  );
  const p = h2.core.pciDevice(pf.name)!;
  refuse = true;
  t.equal(await errnoOf(h2.core.setNumVfs(p, 0)), 'EBUSY', "the driver's errno");
  t.equal(pf.numVfs, 2);
  t.equal(pf.virtfns.length, 2, 'the VFs stay');
});

t.test('uevents: add, bind per VF, then the PF change; disable: unbind, remove per VF, no PF event', async t => {
  const h = harness();
  const pf = await h.core.host.addPciDevice(pfSpec());
  t.same(h.uevents, [], 'a PF added at load is coldplugged: no events');
  await h.core.setNumVfs(h.core.pciDevice(pf.name)!, 2);
  const short = () => h.uevents.map(e => `${e.ACTION} ${e.DEVPATH.split('/').pop()}${e.DRIVER ? ` DRIVER=${e.DRIVER}` : ''}`);
  t.same(short(), [
    'add 0000:41:00.4',
    'bind 0000:41:00.4 DRIVER=nvidia',
    'add 0000:41:00.5',
    'bind 0000:41:00.5 DRIVER=nvidia',
    `change ${PF} DRIVER=nvidia`,
  ]);
  t.same(
    h.uevents.map(e => [e.SUBSYSTEM, e.PCI_SLOT_NAME]),
    [
      ['pci', '0000:41:00.4'],
      ['pci', '0000:41:00.4'],
      ['pci', '0000:41:00.5'],
      ['pci', '0000:41:00.5'],
      ['pci', PF],
    ],
    "SUBSYSTEM=pci and the device's own variables",
  );
  h.uevents.length = 0;
  await h.core.setNumVfs(h.core.pciDevice(pf.name)!, 0);
  t.same(short(), ['unbind 0000:41:00.4', 'remove 0000:41:00.4', 'unbind 0000:41:00.5', 'remove 0000:41:00.5']);
});

t.test('a VF probe may register the VF as an mdev parent; disabling SR-IOV removes it and its devices', async t => {
  const h = harness();
  const core = h.core;
  const pf = await core.host.addPciDevice(
    pfSpec({
      vf: (_pf, i) => ({
        driver: 'nvidia',
        iommuGroup: 200 + i,
        probe: async vf => {
          await core.host.registerDevice(
            { path: vf.device.path, typePrefix: 'nvidia' },
            { driver: 'nvidia-vgpu-vfio', deviceApi: 'vfio-pci', types: [{ id: '593' }], maxInstances: 1, create() {}, remove() {} },
          );
        },
      }),
    }),
  );
  await core.setNumVfs(core.pciDevice(pf.name)!, 2);
  const parent = core.parent('0000:41:00.4')!;
  t.ok(parent, 'the VF is an mdev parent');
  t.same(parent.device.subsystem, { bus: 'pci' }, "the VF's bus");
  t.equal(parent.device.iommuGroup, 200, "and group: the VF's own");
  t.same(
    h.uevents
      .filter(e => e.SUBSYSTEM === 'pci')
      .slice(0, 3)
      .map(e => `${e.ACTION} ${e.MDEV_STATE ?? ''}`),
    ['add ', 'change registered', 'bind '],
    'the parent registers inside the probe: between add and bind',
  );
  const dev = await core.create(parent.types[0]!, '83b8f4f2-509f-382f-3c1e-e6bfe0fa0001');
  await core.setNumVfs(core.pciDevice(pf.name)!, 0);
  t.equal(dev.state, 'gone', 'the vGPU went with its VF');
  t.equal(core.parent('0000:41:00.4'), undefined);
  t.same([...core.parents()], []);
});

t.test('bad specs are EINVAL; a function of that name, EEXIST', async t => {
  const h = harness();
  const add = (s: PciDeviceSpec) => errnoOf(h.core.host.addPciDevice(s));
  t.equal(await add({ ...pfSpec(), sriov: { ...pfSpec().sriov!, totalVfs: 0 } }), 'EINVAL');
  t.equal(await add({ ...pfSpec(), sriov: { ...pfSpec().sriov!, stride: 0 } }), 'EINVAL');
  t.equal(await add({ ...pfSpec(), sriov: { ...pfSpec().sriov!, numVfs: 9 } }), 'EINVAL');
  t.equal(await add({ ...pfSpec(), path: 'devices/../x' }), 'EINVAL');
  await h.core.host.addPciDevice(pfSpec());
  t.equal(await add(pfSpec()), 'EEXIST');
});

t.test('a plugin unload disables SR-IOV and removes its PF', async t => {
  const h = harness();
  await h.core.loadPlugin({ name: 'gpu', init: async m => void (await m.addPciDevice(pfSpec({ numVfs: 2 }))) });
  t.equal([...h.core.pciDevices()].length, 3);
  await h.core.unloadPlugin('gpu');
  t.same([...h.core.pciDevices()], []);
  t.same(
    h.uevents.map(e => e.ACTION),
    ['unbind', 'remove', 'unbind', 'remove'],
  );
});
