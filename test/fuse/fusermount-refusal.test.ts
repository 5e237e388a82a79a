// fusermountRefusal asks fusermount again why a mount failed (libfuse runs it
// without stderr): its own reason when it refuses; should it mount after all,
// undefined, nothing left mounted, and no wait on its auto_unmount half (which
// lives until the socket closes).
import t from 'tap';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { fusermountRefusal, which } from '../../src/fuse/programs.js';
import { fuseOptionString } from '../../src/fuse/mount.js';
import { isMounted, makeMountDir } from '../helpers/daemon.js';

const fusermount = which('fusermount');
const opts = { skip: !fusermount && 'fusermount missing' };

t.test('fusermount refuses: its first line', opts, async t => {
  const dir = await makeMountDir(t);
  const file = path.join(dir, 'occupant');
  await fsp.writeFile(file, '');
  t.teardown(() => fsp.unlink(file));
  t.match(await fusermountRefusal(fusermount!, fuseOptionString(), dir), /fusermount: mountpoint is not empty$/);
  t.notOk(await isMounted(dir));
});

t.test('fusermount mounts after all: undefined, and nothing left mounted', opts, async t => {
  const dir = await makeMountDir(t);
  t.equal(await fusermountRefusal(fusermount!, fuseOptionString(), dir), undefined);
  t.notOk(await isMounted(dir), 'unmounted before it resolved');
});
