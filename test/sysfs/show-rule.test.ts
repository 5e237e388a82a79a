// One rule for what a show may return, on every path (core/show.ts): text or
// bytes (a Buffer or any Uint8Array); anything else fails the read with EIO.
// Checked on a vendor attribute, a type's description and a parent's uevent
// variables, with the real core and presenter.
import t from 'tap';
import { MdevCore } from '../../src/core/core.js';
import type { Uevent } from '../../src/core/api.js';
import { SysfsPresenter } from '../../src/sysfs/presenter.js';
import { KAttr, openAttr, O_RDONLY, type KDir } from '../../src/kernfs/index.js';

const P = '/devices/virtual/shows/shows';

async function read(root: KDir, path: string): Promise<string> {
  const n = root.lookup(path);
  if (!(n instanceof KAttr)) throw new Error(`${path} is not an attribute`);
  try {
    return (await openAttr(n, O_RDONLY).read(0, 4096)).toString();
  } catch (e) {
    return `errno ${(e as { errno?: string }).errno}`;
  }
}

t.test('text and bytes are shown; anything else is EIO', async t => {
  const core = new MdevCore();
  const pr = new SysfsPresenter(core).attach();
  const uevents: Uevent[] = [];
  core.on('uevent', e => uevents.push(e));
  const values: Record<string, unknown> = {
    text: 'text\n',
    buffer: Buffer.from('buffer\n'),
    u8: new TextEncoder().encode('u8\n'),
    number: 42,
    undef: undefined,
    object: { a: 1 },
  };
  await core.loadPlugin({
    name: 'shows',
    async init(mdev) {
      await mdev.registerDevice(
        {
          path: 'devices/virtual/shows/shows',
          typePrefix: 'shows',
          subsystem: { class: 'shows' },
          attrs: [
            {
              attrs: [
                ...Object.keys(values).map(name => ({ name, show: () => values[name] as string })),
                { name: 'uevent', show: () => new TextEncoder().encode('DRIVER=bytes\nX_KEY=1\n') },
              ],
            },
          ],
        },
        {
          driver: 'shows',
          deviceApi: 'vfio-pci',
          maxInstances: 1,
          types: [
            { id: 'b', description: () => Buffer.from('bytes description') },
            { id: 'n', description: () => 7 as unknown as string },
          ],
          create() {},
          remove() {},
        },
      );
    },
  });
  const root = pr.root;
  t.equal(await read(root, `${P}/text`), 'text\n');
  t.equal(await read(root, `${P}/buffer`), 'buffer\n');
  t.equal(await read(root, `${P}/u8`), 'u8\n');
  t.equal(await read(root, `${P}/number`), 'errno EIO', 'a number is not printed');
  t.equal(await read(root, `${P}/undef`), 'errno EIO');
  t.equal(await read(root, `${P}/object`), 'errno EIO');
  t.equal(await read(root, `${P}/mdev_supported_types/shows-b/description`), 'bytes description');
  t.equal(await read(root, `${P}/mdev_supported_types/shows-n/description`), 'errno EIO');
  const registered = uevents.find(e => e.MDEV_STATE === 'registered');
  t.equal(registered?.DRIVER, 'bytes', 'a uevent show in bytes gives the MDEV_STATE variables');
  t.equal(registered?.X_KEY, '1');
  pr.detach();
  await core.shutdown();
});
