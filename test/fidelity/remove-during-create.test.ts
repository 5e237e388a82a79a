// A `remove` written while the device is still being created (modern
// kernels): remove_store deletes its own file (device_remove_file_self), then
// mdev_device_remove finds the device not yet active and returns EAGAIN. The
// writer sees EAGAIN; the device finishes its creation and stays, without a
// `remove` file, exactly as on the kernel.
import t from 'tap';
import path from 'node:path';
import { FIXTURES, mdevfsMount, startDaemon } from '../helpers/daemon.js';
import { one, writeOnce } from '../helpers/sys.js';
import { sleep } from '../helpers/util.js';

const HELD = path.join(FIXTURES, 'held-create-plugin.ts');
const U = 'b1e2d3c4-0000-4000-8000-00000000abcd';
const TYPE = 'class/mdev_bus/mheld/mdev_supported_types/mheld-1';

t.test('remove during create: EAGAIN, and the device stays without remove', async t => {
  const d = await startDaemon(t, { command: mdevfsMount('--driver', HELD) });
  const dev = d.p('bus/mdev/devices', U);
  const creating = writeOnce(d.p(TYPE, 'create'), U);
  // device_add has run (the device is listed) while the vendor's create waits.
  let listing: unknown;
  for (let i = 0; i < 100; i++) {
    listing = await one(['listdir', dev]);
    if (Array.isArray(listing)) break;
    await sleep(50);
  }
  t.ok(
    Array.isArray(listing) && listing.includes('remove'),
    `remove is there while the device is being created: ${JSON.stringify(listing)}`,
  );
  t.notOk(Array.isArray(listing) && listing.includes('mdev_type'), 'not yet linked to its type');
  t.equal(await writeOnce(path.join(dev, 'remove'), '1'), 'EAGAIN');
  t.same(await one(['lstat', path.join(dev, 'remove')]), { errno: 'ENOENT' }, 'the remove file deleted itself');
  t.equal(await writeOnce(d.p(TYPE, 'release'), '1'), 1);
  t.equal(await creating, 36, 'the create completes');
  const after = (await one(['listdir', dev])) as string[];
  t.ok(after.includes('mdev_type'), 'active: linked to its type');
  t.notOk(after.includes('remove'), 'and still without remove');
  t.equal(await one(['readlink', path.join(d.p(TYPE, 'devices'), U)]), `../../../${U}`, 'listed under its type');
});
