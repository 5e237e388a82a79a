// Generic kernfs behaviour that every sysfs file shows, whatever its driver:
// O_DIRECT (do_dentry_open: no FMODE_CAN_ODIRECT → EINVAL), fsync on a
// directory (kernfs dir fops have none → EINVAL) and on a file (noop_fsync),
// stat's size, blocks and block size, lseek to the end and to data, and a
// shared mmap (kernfs_fop_mmap: ENODEV). The probes that change nothing run on this machine's real /sys too, and
// must answer the same (first checked on Linux 6.18.44). Extended attributes
// are the one deliberate difference (docs/abi.md#where-mdevfs-differs):
// sysfs answers ENODATA (fs/kernfs/inode.c), mdevfs EOPNOTSUPP for every name,
// because answering would cost a FUSE round trip per `ls -l` entry and per write.
// A private mmap and statfs's type are FUSE's limits, pinned here as the
// differences table states them.
import t from 'tap';
import { execFile } from 'node:child_process';
import { statfsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { mdevfsMount, startDaemon } from '../helpers/daemon.js';
import { PYTHON } from '../helpers/util.js';

const PROBE = String.raw`
import ctypes, errno, json, mmap, os, sys
f, d = sys.argv[1], sys.argv[2]
out = {}
def tr(name, fn):
    try:
        r = fn()
        out[name] = 'ok' if r is None else r
    except OSError as e:
        out[name] = errno.errorcode[e.errno]
def close(fd): os.close(fd)
tr('open O_DIRECT', lambda: close(os.open(f, os.O_RDONLY | os.O_DIRECT)))
tr('opendir O_DIRECT', lambda: close(os.open(d, os.O_RDONLY | os.O_DIRECTORY | os.O_DIRECT)))
tr('getxattr user', lambda: os.getxattr(f, 'user.mdevfs').decode())
tr('getxattr security', lambda: os.getxattr(f, 'security.mdevfs').decode())
tr('getxattr other namespace', lambda: os.getxattr(f, 'mdevfs.x').decode())
tr('listxattr', lambda: os.listxattr(f))
tr('setxattr user', lambda: os.setxattr(f, 'user.mdevfs', b'1'))
tr('removexattr user', lambda: os.removexattr(f, 'user.mdevfs'))
def fsync(p, flags):
    fd = os.open(p, flags)
    try: os.fsync(fd)
    finally: os.close(fd)
tr('fsync dir', lambda: fsync(d, os.O_RDONLY | os.O_DIRECTORY))
tr('fsync file', lambda: fsync(f, os.O_RDONLY))
def mapped(flags):
    fd = os.open(f, os.O_RDONLY)
    try: mmap.mmap(fd, 4096, flags, mmap.PROT_READ).close()
    finally: os.close(fd)
def seek(p, whence):
    fd = os.open(p, os.O_RDONLY)
    try: return os.lseek(fd, 0, whence)
    finally: os.close(fd)
for name, p in (('file', f), ('dir', d)):
    s = os.lstat(p)
    out['stat ' + name] = [s.st_size, s.st_blocks, s.st_blksize]
    tr('SEEK_END ' + name, lambda: seek(p, os.SEEK_END))
    tr('SEEK_DATA ' + name, lambda: seek(p, os.SEEK_DATA))
tr('mmap shared', lambda: mapped(mmap.MAP_SHARED))
tr('mmap private', lambda: mapped(mmap.MAP_PRIVATE))
buf = ctypes.create_string_buffer(120)
libc = ctypes.CDLL(None, use_errno=True)
out['statfs f_type'] = hex(ctypes.c_long.from_buffer(buf).value) if libc.statfs(d.encode(), buf) == 0 else errno.errorcode[ctypes.get_errno()]
print(json.dumps(out))
`;

function probe(file: string, dir: string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    execFile(PYTHON, ['-c', PROBE, file, dir], { timeout: 20_000 }, (err, stdout) =>
      err ? reject(new Error(`probe failed: ${err.message}`)) : resolve(JSON.parse(stdout) as Record<string, unknown>),
    );
  });
}

// Python names errno 95 (EOPNOTSUPP) ENOTSUP.
// stat: size PAGE_SIZE for an attribute, 0 for a directory, no blocks
// (kernfs_refresh_inode), st_blksize PAGE_SIZE (generic_fillattr); lseek:
// generic_file_llseek on the file and on the directory.
const COMMON = {
  'open O_DIRECT': 'EINVAL',
  'opendir O_DIRECT': 'EINVAL',
  'fsync dir': 'EINVAL',
  'fsync file': 'ok',
  'mmap shared': 'ENODEV',
  'stat file': [4096, 0, 4096],
  'stat dir': [0, 0, 4096],
  'SEEK_END file': 4096,
  'SEEK_DATA file': 0,
  'SEEK_END dir': 0,
  'SEEK_DATA dir': 'ENXIO',
};
// kernfs_fop_mmap(): no mmap op, ENODEV for every mapping; statfs: SYSFS_MAGIC.
const KERNEL_FUSE_LIMITS = { 'mmap private': 'ENODEV', 'statfs f_type': '0x62656572' };
// FUSE's limits (docs/abi.md#where-mdevfs-differs): a private mapping of a
// direct_io file never reaches the daemon; the type is FUSE_SUPER_MAGIC.
const MDEVFS_FUSE_LIMITS = { 'mmap private': 'ok', 'statfs f_type': '0x65735546' };
const KERNEL_XATTRS = {
  'getxattr user': 'ENODATA',
  'getxattr security': 'ENODATA',
  'getxattr other namespace': 'ENOTSUP',
  listxattr: [],
  'setxattr user': 'ENOTSUP',
  'removexattr user': 'ENOTSUP',
};
const MDEVFS_XATTRS = {
  'getxattr user': 'ENOTSUP',
  'getxattr security': 'ENOTSUP',
  'getxattr other namespace': 'ENOTSUP',
  listxattr: 'ENOTSUP',
  'setxattr user': 'ENOTSUP',
  'removexattr user': 'ENOTSUP',
};

const realSysfs = (() => {
  try {
    return statfsSync('/sys').type === 0x62656572;
  } catch {
    return false;
  }
})();

t.test('the kernel answers so (this machine, nothing written)', { skip: realSysfs ? false : '/sys is not sysfs here' }, async t => {
  t.comment(`checked on Linux ${os.release()}`);
  t.same(await probe('/sys/kernel/uevent_seqnum', '/sys/kernel'), { ...COMMON, ...KERNEL_XATTRS, ...KERNEL_FUSE_LIMITS });
});

for (const profile of ['modern', 'legacy']) {
  t.test(`${profile}: mdevfs answers the same, but for extended attributes`, async t => {
    const d = await startDaemon(t, { command: mdevfsMount('--profile', profile) });
    const dir = d.p('devices/virtual/mtty/mtty');
    t.same(await probe(path.join(dir, 'mdev_supported_types/mtty-1/name'), dir), { ...COMMON, ...MDEVFS_XATTRS, ...MDEVFS_FUSE_LIMITS });
  });
}
