// docs/abi.md#file-behaviour: nothing can be created in sysfs, but the errno depends on the path
// the VFS takes: open(O_CREAT) and mknod(S_IFREG) go through vfs_create
// (kernfs has no ->create: EACCES); a FIFO, socket or device node goes
// through vfs_mknod (no ->mknod: EPERM, root has CAP_MKNOD).
import t from 'tap';
import { startDaemon } from '../helpers/daemon.js';
import { one } from '../helpers/sys.js';

t.test('mknod and O_CREAT of new names in the mounted tree', async t => {
  const d = await startDaemon(t);
  const T = d.p('devices/virtual/mtty/mtty/mdev_supported_types/mtty-1');
  t.same(await one(['open', `${T}/new`, 'O_WRONLY|O_CREAT']), { errno: 'EACCES' }, 'O_CREAT');
  t.same(await one(['mknod', `${T}/new`, 0o100644]), { errno: 'EACCES' }, 'regular file');
  t.same(await one(['mknod', `${T}/new`, 0o010644]), { errno: 'EPERM' }, 'FIFO');
  t.same(await one(['mknod', `${T}/new`, 0o140644]), { errno: 'EPERM' }, 'socket');
  t.same(await one(['mknod', `${T}/new`, 0o020644]), { errno: 'EPERM' }, 'character device');
  t.same(await one(['mknod', `${T}/name`, 0o010644]), { errno: 'EEXIST' }, 'an existing name: EEXIST first');
  t.same(await one(['lstat', `${T}/new`]), { errno: 'ENOENT' }, 'nothing was created');
});
