// A plugin's binary attributes (AttributeGroup.binAttrs) in the sysfs tree, in
// memory: on the parent (named and unnamed groups) and on every mediated
// device (mdevAttrGroups); each read and write is a bounded plugin call.
import t from 'tap';
import { MdevCore } from '../../src/core/core.js';
import type { BinaryAttribute, MdevDevice, Parent, VendorPlugin } from '../../src/core/api.js';
import { SysfsPresenter } from '../../src/sysfs/presenter.js';
import { KBinAttr, openBin, O_RDONLY, O_RDWR, type KDir } from '../../src/kernfs/index.js';
import { MdevError } from '../../src/core/errno.js';

const P = '/devices/virtual/bintest/bintest';
const U1 = '83b8f4f2-509f-382f-3c1e-e6bfe0fa1001';

function bin(root: KDir, path: string): KBinAttr {
  const n = root.lookup(path);
  if (!(n instanceof KBinAttr)) throw new Error(`${path} is not a binary attribute`);
  return n;
}

const errnoOf = (p: Promise<unknown>): Promise<string> =>
  p.then(
    () => 'resolved',
    (e: unknown) => (e as MdevError).errno,
  );

t.test('binAttrs on parents and devices', async t => {
  const calls: string[] = [];
  const regs = new Uint8Array(8);
  const image: BinaryAttribute<Parent> = {
    name: 'image',
    size: 300,
    read: (p, off, len) => {
      calls.push(`${p.name} ${off} ${len}`);
      return Uint8Array.from({ length: len }, (_, k) => (off + k) & 0xff);
    },
  };
  const plugin: VendorPlugin = {
    name: 'bintest',
    async init(mdev) {
      await mdev.registerDevice(
        {
          path: 'devices/virtual/bintest/bintest',
          typePrefix: 'bintest',
          subsystem: { class: 'bintest' },
          attrs: [
            { attrs: [{ name: 'vendor', show: () => '0x1234\n' }], binAttrs: [image] },
            {
              name: 'sub',
              attrs: [],
              binAttrs: [{ name: 'fails', size: 4, read: () => Promise.reject(new MdevError('ENXIO')) }],
            },
          ],
        },
        {
          driver: 'bintest',
          deviceApi: 'vfio-pci',
          maxInstances: 2,
          types: [{ id: 'a', name: 'A' }],
          create: () => {},
          remove: () => {},
          mdevAttrGroups: [
            {
              name: 'vendor',
              attrs: [],
              binAttrs: [
                {
                  name: 'regs',
                  size: regs.length,
                  read: (dev: MdevDevice, off, len) => {
                    calls.push(`${dev.uuid} ${off} ${len}`);
                    return regs.subarray(off, off + len);
                  },
                  write: (_dev, off, data) => {
                    regs.set(data, off);
                  },
                },
              ],
            },
          ],
        },
      );
    },
  };
  const core = new MdevCore({ callTimeoutMs: 2000 });
  const pr = new SysfsPresenter(core).attach();
  await core.loadPlugin(plugin);
  const root = pr.root;

  const img = bin(root, `${P}/image`);
  t.equal(img.size, 300);
  t.equal(img.mode, 0o444, 'read only: 0444');
  const h = openBin(img, O_RDONLY);
  t.same([...(await h.read(0x34, 4))], [0x34, 0x35, 0x36, 0x37]);
  t.equal((await h.read(290, 100)).length, 10, 'cut at the size');
  t.equal((await h.read(300, 100)).length, 0, 'nothing at the end');
  t.same(calls, ['bintest 52 4', 'bintest 290 10'], 'the plugin sees ranges within the size; none at the end');
  t.equal(await errnoOf(openBin(bin(root, `${P}/sub/fails`), O_RDONLY).read(0, 4)), 'ENXIO', "the plugin's errno");

  const type = core.parent('bintest')!.types[0]!;
  await core.create(type, U1);
  const r = bin(root, `${P}/${U1}/vendor/regs`);
  t.equal(r.mode, 0o644, 'read and write: 0644');
  const rh = openBin(r, O_RDWR);
  t.equal(await rh.write(Buffer.from([0xaa, 0xbb, 0xcc]), 6), 2, 'cut at the size');
  t.equal(await errnoOf(rh.write(Buffer.from([1]), 8)), 'EFBIG');
  t.same([...(await rh.read(0, 64))], [0, 0, 0, 0, 0, 0, 0xaa, 0xbb]);
  await core.remove(core.device(U1)!);
  t.equal(root.lookup(`${P}/${U1}`), undefined, 'gone with the device');
  t.equal(await errnoOf(rh.read(0, 4)), 'ENODEV', 'an open file on a removed device');
  await core.shutdown();
});
