// The FUSE adapter on its own: a hand-made kernfs tree (test/fixtures/serve-tree.ts)
// mounted for real, probed with coreutils and raw syscalls from child processes.
import t from 'tap';
import { startDaemon, serveTree, sh, isMounted } from '../helpers/daemon.js';
import { sys, writeOnce, readOnce, one } from '../helpers/sys.js';
import { sleep } from '../helpers/util.js';

const U = '83b8f4f2-509f-382f-3c1e-e6bfe0fa1001';

t.test('hand-made tree over FUSE', async t => {
  const d = await startDaemon(t, { command: serveTree() });
  t.ok(await isMounted(d.dir), 'mounted');

  t.test('mount options', async t => {
    const r = await sh(`grep " ${d.dir} " /proc/mounts`);
    t.match(r.stdout, /^mdevfs \S+ fuse\.mdevfs /);
  });

  t.test('getattr: modes with type bits, st_size 4096, nlink, uid/gid 0, stable ino', async t => {
    const a = (await one(['lstat', d.p('attr_ro')])) as { mode: number; size: number; nlink: number; uid: number; ino: number };
    t.equal(a.mode, 0o100444);
    t.equal(a.size, 4096);
    t.equal(a.nlink, 1);
    t.equal(a.uid, 0);
    const a2 = (await one(['lstat', d.p('attr_ro')])) as { ino: number };
    t.equal(a2.ino, a.ino, 'same ino twice');
    const c = (await one(['lstat', d.p('create')])) as { mode: number; size: number };
    t.equal(c.mode, 0o100200);
    const dir = (await one(['lstat', d.p('devices')])) as { mode: number; size: number; nlink: number };
    t.equal(dir.mode, 0o040755);
    t.equal(dir.size, 0);
    t.equal(dir.nlink, 2);
    const root = (await one(['lstat', d.dir])) as { nlink: number };
    t.equal(root.nlink, 4, 'root: . + devices + many + 2');
    const l = (await one(['lstat', d.p('devlink')])) as { mode: number };
    t.equal(l.mode, 0o120777);
    t.same(await one(['lstat', d.p('nope')]), { errno: 'ENOENT' });
  });

  t.test('readdir has . and .., ls -l works', async t => {
    const r = await sh(`ls -a ${d.dir}`);
    t.match(r.stdout, /^\.\n\.\.\n/);
    const many = await sh(`ls ${d.p('many')} | wc -l`);
    t.equal(many.stdout.trim(), '2000');
    const ll = await sh(`ls -l ${d.dir}`);
    t.match(ll.stdout, /--w------- 1 root root 4096 .* create\n/);
    t.match(ll.stdout, /lrwxrwxrwx 1 root root +0 .* devlink -> devices\n/);
  });

  t.test('open: EACCES by mode even for root; access() succeeds for root', async t => {
    t.same(await readOnce(d.p('create')), { errno: 'EACCES' });
    t.equal(await writeOnce(d.p('attr_ro'), 'x\n'), 'EACCES');
    t.same(await one(['open', d.p('create'), 'O_RDWR']), { errno: 'EACCES' });
    t.equal(await one(['access', d.p('create'), 'R_OK']), true);
    t.equal(await one(['access', d.p('attr_ro'), 'W_OK']), true);
    t.equal(await one(['access', d.p('attr_ro'), 'X_OK']), false);
    t.equal(await one(['access', d.p('devices'), 'X_OK']), true);
    const cat = await sh(`cat ${d.p('create')}`);
    t.equal(cat.code, 1);
    t.match(cat.stderr, /Permission denied/);
  });

  t.test('reads: snapshot at offset 0, continue from it, EOF past the end', async t => {
    t.equal(await readOnce(d.p('attr_ro')), 'hello\n');
    const r = await sys([
      ['open', d.p('counter'), 'O_RDONLY'],
      ['read', 0, 1],
      ['read', 0, 10],
      ['read', 0, 10],
      ['pread', 0, 10, 0],
      ['pread', 0, 10, 100],
      ['close', 0],
    ]);
    const first = r[1]!.ok as string;
    t.equal(first.length, 1);
    t.equal(first + (r[2]!.ok as string), `${first}${r[2]!.ok as string}`);
    t.match(first + (r[2]!.ok as string), /^\d+\n$/);
    t.equal(r[3]!.ok, '', 'EOF');
    t.not(r[4]!.ok, first + (r[2]!.ok as string), 'a read at 0 regenerates');
    t.equal(r[5]!.ok, '');
    const big = await sh(`cat ${d.p('big')} | wc -c`);
    t.equal(big.stdout.trim(), '4095', 'show cut to PAGE_SIZE - 1');
    const dd = await sh(
      `dd if=${d.p('big')} bs=100 2>/dev/null | md5sum; head -c 4095 <(printf 'y%.0s' $(seq 3000); printf 'z%.0s' $(seq 3000)) | md5sum`,
    );
    const [a, b] = dd.stdout.trim().split('\n');
    t.equal(a, b, 'small reads reassemble the snapshot');
    t.same(await readOnce(d.p('show_fails')), { errno: 'ENODEV' });
  });

  t.test('writes: one store each, errno to the writer, O_TRUNC, empty writes, 4096 cut', async t => {
    t.equal(await writeOnce(d.p('sink'), 'a\n'), 2);
    t.equal(await writeOnce(d.p('sink'), 'bc', 'O_WRONLY'), 2, 'no O_TRUNC');
    t.equal(await writeOnce(d.p('sink'), 'd', 'O_WRONLY|O_CREAT|O_TRUNC'), 1, 'O_CREAT|O_TRUNC on an existing file');
    t.equal(await writeOnce(d.p('sink'), 'e', 'O_RDWR|O_TRUNC'), 1);
    const r = await sys([
      ['open', d.p('sink'), 'O_WRONLY'],
      ['write', 0, ''],
      ['pwrite', 0, 'f', 100],
      ['write', 0, Buffer.alloc(5000, 0x41)],
      ['ftruncate', 0, 0],
      ['close', 0],
    ]);
    t.equal(r[1]!.ok, 0, 'zero-length write');
    t.equal(r[2]!.ok, 1, 'offset ignored');
    t.equal(r[3]!.ok, 4096, 'a 5000-byte write stores 4096 and says so');
    t.equal(r[4]!.ok, 0, 'ftruncate accepted');
    t.same(await one(['truncate', d.p('sink'), 0]), 0, 'truncate accepted');
    const shown = (await readOnce(d.p('sink'))) as string;
    const [count, json] = [shown.slice(0, shown.indexOf(' ')), shown.slice(shown.indexOf(' ') + 1)];
    t.equal(count, '6', 'six stores: the empty write stored nothing');
    const stores = JSON.parse(json) as string[];
    t.same(stores.slice(0, 5), ['a\n', 'bc', 'd', 'e', 'f']);
    t.equal(stores[5], '<4096 bytes>');
    t.equal(await writeOnce(d.p('fail_eusers'), '1\n'), 'EUSERS');
    t.equal(await writeOnce(d.p('fail_plain'), '1\n'), 'EIO');
    t.equal(await writeOnce(d.p('fail_weird'), '1\n'), 'EIO', 'an unknown errno number becomes EIO');
    const e = await sh(`echo 1 > ${d.p('fail_eusers')}`);
    t.match(e.stderr, /write error: Too many users/);
  });

  t.test('namespace operations are refused like sysfs', async t => {
    t.same(await one(['mkdir', d.p('x')]), { errno: 'EPERM' });
    t.same(await one(['rmdir', d.p('devices')]), { errno: 'EPERM' });
    t.same(await one(['unlink', d.p('attr_ro')]), { errno: 'EPERM' });
    t.same(await one(['rename', d.p('attr_ro'), d.p('x')]), { errno: 'EPERM' });
    t.same(await one(['symlink', 'devices', d.p('x')]), { errno: 'EPERM' });
    t.same(await one(['link', d.p('attr_ro'), d.p('x')]), { errno: 'EPERM' });
    t.same(await one(['open', d.p('new'), 'O_WRONLY|O_CREAT']), { errno: 'EACCES' });
    t.same(await one(['mknod', d.p('new')]), { errno: 'EACCES' });
    const touch = await sh(`touch ${d.p('new')}`);
    t.match(touch.stderr, /Permission denied/);
  });

  t.test('chmod works like sysfs: a read bit on a store-only file gives EIO at read', async t => {
    t.same(await one(['chmod', d.p('fail_eusers'), 0o600]), 0);
    const st = (await one(['lstat', d.p('fail_eusers')])) as { mode: number };
    t.equal(st.mode, 0o100600);
    t.same(await readOnce(d.p('fail_eusers')), { errno: 'EIO' });
    await one(['chmod', d.p('fail_eusers'), 0o200]);
  });

  t.test('symlinks: relative text unchanged, resolvable', async t => {
    t.equal(await one(['readlink', d.p('devlink')]), 'devices');
    const r = await sh(`readlink ${d.p('devlink')}; ls ${d.p('devlink')}/ | wc -l`);
    t.match(r.stdout, /^devices\n/);
  });

  t.test('create/remove: present when the write returns, gone after; ENODEV on a stale fd', async t => {
    const e = await sh(`echo ${U} > ${d.p('create')}`);
    t.equal(e.code, 0, e.stderr);
    t.equal(await readOnce(d.p('devices', U, 'name')), `${U}\n`);
    t.equal(await one(['readlink', d.p('devices', U, 'up')]), '../..');
    const again = await sh(`echo ${U} > ${d.p('create')}`);
    t.match(again.stderr, /File exists/);
    t.equal(await writeOnce(d.p('create'), 'x'.repeat(35)), 'EINVAL');
    // Open `name`, remove the device, then use the descriptor.
    const r = await sys([
      ['open', d.p('devices', U, 'name'), 'O_RDONLY'],
      ['open', d.p('devices', U, 'remove'), 'O_WRONLY'],
      ['write', 1, '1'],
      ['read', 0, 100],
      ['write', 1, '1'],
      ['close', 0],
      ['close', 1],
      ['stat', d.p('devices', U)],
    ]);
    t.equal(r[2]!.ok, 1);
    t.equal(r[3]!.errno, 'ENODEV', 'read on a removed node');
    t.equal(r[4]!.errno, 'ENODEV', 'write on a removed node');
    t.equal(r[7]!.errno, 'ENOENT', 'gone at once (no entry cache)');
  });

  t.test('a hung show becomes ETIMEDOUT and does not wedge the mount', async t => {
    const started = Date.now();
    const [hung, fine] = await Promise.all([
      readOnce(d.p('hang')),
      (async () => {
        await sleep(100);
        const s = Date.now();
        const v = await readOnce(d.p('attr_ro'));
        return { v, ms: Date.now() - s };
      })(),
    ]);
    t.same(hung, { errno: 'ETIMEDOUT' });
    t.ok(Date.now() - started < 5000);
    t.equal(fine.v, 'hello\n');
    t.ok(fine.ms < 800, `other reads go on meanwhile (${fine.ms} ms)`);
    // Parallel slow reads overlap.
    const s = Date.now();
    const all = await Promise.all(Array.from({ length: 8 }, () => readOnce(d.p('slow'))));
    t.same(all, Array(8).fill('slow\n'));
    t.ok(Date.now() - s < 2000, `8 parallel 300 ms reads took ${Date.now() - s} ms`);
  });

  t.test('statfs', async t => {
    const r = await sh(`stat -f -c '%s %n' ${d.dir}`);
    t.match(r.stdout, /^4096 /);
  });

  t.test('SIGTERM unmounts cleanly', async t => {
    const exit = await d.stop('SIGTERM');
    t.equal(exit.code, 0);
    t.notOk(await isMounted(d.dir), 'no mount left');
    t.match(d.stderr, /unmounted/);
  });
});
