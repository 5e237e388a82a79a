/**
 * The benchmark's baseline: the smallest fuse-native file system that serves
 * what the benchmark touches, at the same paths as mdevfs (test/bench/layout.ts)
 * and with the same libfuse options, so the ratio against it is the cost of
 * mdevfs itself (core, sysfs model, adapter) over bare fuse-native.
 *
 *   <TYPE_DIR>/available_instances   static text
 *   <TYPE_DIR>/create                write a UUID: <PARENT_DIR>/<uuid>/ (with
 *                                    `remove`) and DEVICES/<uuid> -> that dir
 *   <PARENT_DIR>/<uuid>/remove       write anything: the device goes away
 *
 * Usage: node --import tsx test/bench/baseline-fs.ts <mountpoint> [--prefill N]
 * (--prefill creates N devices before mounting). Prints
 * "baseline: mounted <dir> (...)" when ready; SIGINT/SIGTERM/SIGHUP unmount
 * and exit. Run it as its own process: never touch the mount from here.
 */
import { constants as fsc } from 'node:fs';
import { constants } from 'node:os';
import { randomUUID } from 'node:crypto';
import type Fuse from 'fuse-native';
import { forceUnmount, fuseOptionString, loadFuse } from '../../src/fuse/mount.js';
import { ATTR, CREATE, DEVICES, PARENT_DIR } from './layout.js';

const E = (name: keyof typeof constants.errno): number => -constants.errno[name];
const S_IFDIR = 0o040000,
  S_IFREG = 0o100000,
  S_IFLNK = 0o120000;
const PAGE = 4096;
const T0 = Date.now();
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

interface Node {
  ino: number;
  /** Type bits | permission bits. */
  mode: number;
  children?: Map<string, Node>;
  parent?: Node;
  content?: Buffer;
  target?: string;
  /** A write(2) to this file; returns bytes taken or a negative errno. */
  store?: (data: Buffer) => number;
}

let nextIno = 1;
const root: Node = { ino: nextIno++, mode: S_IFDIR | 0o755, children: new Map() };

function mkdirp(path: string): Node {
  let d = root;
  for (const name of path.split('/')) {
    let c = d.children!.get(name);
    if (!c) {
      c = { ino: nextIno++, mode: S_IFDIR | 0o755, children: new Map(), parent: d };
      d.children!.set(name, c);
    }
    d = c;
  }
  return d;
}

function split(path: string): [string, string] {
  const i = path.lastIndexOf('/');
  return [path.slice(0, i), path.slice(i + 1)];
}

function lookup(path: string): Node | undefined {
  if (path === '/') return root;
  let n: Node | undefined = root;
  let i = 1;
  while (n && i <= path.length) {
    let j = path.indexOf('/', i);
    if (j < 0) j = path.length;
    n = n.children?.get(path.slice(i, j));
    i = j + 1;
  }
  return n;
}

// The tree.
const [attrDir, attrName] = split(ATTR);
mkdirp(attrDir).children!.set(attrName, { ino: nextIno++, mode: S_IFREG | 0o444, content: Buffer.from('99990\n') });
const parentDir = mkdirp(PARENT_DIR);
const devicesDir = mkdirp(DEVICES);
const up = '../'.repeat(DEVICES.split('/').length);
const devices = new Map<string, Node>();

function createDevice(uuid: string): number {
  if (devices.has(uuid)) return E('EEXIST');
  const dir: Node = { ino: nextIno++, mode: S_IFDIR | 0o755, children: new Map(), parent: parentDir };
  dir.children!.set('remove', {
    ino: nextIno++,
    mode: S_IFREG | 0o200,
    store: () => {
      removeDevice(uuid);
      return 1;
    },
  });
  parentDir.children!.set(uuid, dir);
  const link: Node = { ino: nextIno++, mode: S_IFLNK | 0o777, target: `${up}${PARENT_DIR}/${uuid}` };
  devicesDir.children!.set(uuid, link);
  devices.set(uuid, dir);
  return 0;
}

function removeDevice(uuid: string): void {
  devices.delete(uuid);
  parentDir.children!.delete(uuid);
  devicesDir.children!.delete(uuid);
}

const [createDir, createName] = split(CREATE);
mkdirp(createDir).children!.set(createName, {
  ino: nextIno++,
  mode: S_IFREG | 0o200,
  store: data => {
    if (data.length !== 36 && !(data.length === 37 && data[36] === 0x0a)) return E('EINVAL');
    const s = data.toString('latin1', 0, 36);
    if (!UUID.test(s)) return E('EINVAL');
    const rc = createDevice(s.toLowerCase());
    return rc < 0 ? rc : data.length;
  },
});

function stat(n: Node): Fuse.Stat {
  const type = n.mode & 0o170000;
  return {
    mode: n.mode,
    uid: 0,
    gid: 0,
    size: type === S_IFREG ? PAGE : 0,
    nlink: type === S_IFDIR ? 2 : 1,
    ino: n.ino,
    blksize: PAGE,
    blocks: 0,
    atime: T0,
    mtime: T0,
    ctime: T0,
  };
}

// Open files: fd -> node (fd 0 would leave fh unset).
const handles = new Map<number, Node>();
let nextFd = 1;

const ops: Fuse.Operations = {
  getattr(path, cb) {
    const n = lookup(path);
    if (n) cb(0, stat(n));
    else cb(E('ENOENT'));
  },
  access(path, _mode, cb) {
    cb(lookup(path) ? 0 : E('ENOENT'));
  },
  readdir(path, cb) {
    const d = lookup(path);
    if (!d) return cb(E('ENOENT'));
    if (!d.children) return cb(E('ENOTDIR'));
    const names = ['.', '..'];
    const stats: Fuse.Stat[] = [
      { mode: d.mode, ino: d.ino },
      { mode: (d.parent ?? d).mode, ino: (d.parent ?? d).ino },
    ];
    for (const [name, c] of d.children) {
      names.push(name);
      stats.push({ mode: c.mode, ino: c.ino });
    }
    cb(0, names, stats);
  },
  opendir(path, _flags, cb) {
    const d = lookup(path);
    if (!d) cb(E('ENOENT'));
    else if (!d.children) cb(E('ENOTDIR'));
    else cb(0, 0);
  },
  releasedir(_path, _fd, cb) {
    cb(0);
  },
  open(path, flags, cb) {
    const n = lookup(path);
    if (!n) return cb(E('ENOENT'));
    if (n.children) return cb(E('EISDIR'));
    const acc = flags & 3;
    if ((acc !== fsc.O_WRONLY && !n.content) || (acc !== fsc.O_RDONLY && !n.store)) return cb(E('EACCES'));
    const fd = nextFd++;
    if (nextFd > 0xfffffffe) nextFd = 1;
    handles.set(fd, n);
    cb(0, fd);
  },
  read(_path, fd, buf, len, pos, cb) {
    const c = handles.get(fd)?.content;
    if (!c) return cb(E('EBADF'));
    if (pos >= c.length) return cb(0);
    cb(c.copy(buf, 0, pos, Math.min(c.length, pos + len)));
  },
  write(_path, fd, buf, len, _pos, cb) {
    const n = handles.get(fd);
    if (!n?.store) return cb(E('EBADF'));
    cb(n.store(Buffer.from(buf.subarray(0, len))));
  },
  flush(_path, _fd, cb) {
    cb(0);
  },
  release(_path, fd, cb) {
    handles.delete(fd);
    cb(0);
  },
  truncate(path, _size, cb) {
    cb(lookup(path) ? 0 : E('ENOENT'));
  },
  ftruncate(_path, _fd, _size, cb) {
    cb(0);
  },
  readlink(path, cb) {
    const n = lookup(path);
    if (!n) cb(E('ENOENT'));
    else if (n.target === undefined) cb(E('EINVAL'));
    else cb(0, n.target);
  },
};

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const mnt = args[0];
  const pi = args.indexOf('--prefill');
  const prefill = pi >= 0 ? Number(args[pi + 1]) : 0;
  if (!mnt || !Number.isInteger(prefill) || prefill < 0) {
    process.stderr.write('usage: baseline-fs.ts <mountpoint> [--prefill N]\n');
    process.exit(2);
  }
  for (let i = 0; i < prefill; i++) createDevice(randomUUID());

  // The project's option string with our own fsname/subtype (so /proc/mounts
  // tells the two apart). Its Fuse subclass is local to mountTree(), so the
  // _fuseOptions() override is replicated here.
  const mdevOptions = fuseOptionString({ autoUnmount: true });
  const options = mdevOptions.replace('fsname=mdevfs,subtype=mdevfs', 'fsname=mdevbase,subtype=mdevbase');
  if (options === mdevOptions) throw new Error(`unexpected mdevfs option string: ${mdevOptions}`);

  const FuseCtor = await loadFuse();
  class BaseFuse extends FuseCtor {
    override _fuseOptions(): string {
      return '-o' + options;
    }
  }
  const fuse = new BaseFuse(mnt, ops, { timeout: false });
  await new Promise<void>((resolve, reject) => fuse.mount(err => (err ? reject(err) : resolve())));

  let stopping = false;
  const stop = (): void => {
    if (stopping) process.exit(1);
    stopping = true;
    forceUnmount(mnt).then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, stop);
  process.stdout.write(`baseline: mounted ${mnt} (${devices.size} devices, -o ${options})\n`);
}

main().catch(e => {
  process.stderr.write(`baseline: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
