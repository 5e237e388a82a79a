// Directory listing order: kernfs lists siblings by name hash, then name
// (fs/kernfs/dir.c kernfs_name_hash, kernfs_fop_readdir). The hash is checked
// against this machine's real /sys (first checked on Linux 6.18.44;
// the running kernel is printed with each run), then a mounted mdevfs tree
// must list in the same order.
import t from 'tap';
import os from 'node:os';
import path from 'node:path';
import { opendirSync, statfsSync } from 'node:fs';
import { kernfsNameHash } from '../../src/kernfs/index.js';
import { mdevfsMount, startDaemon } from '../helpers/daemon.js';
import { sh } from '../helpers/daemon.js';

/** Names in the order getdents returns them (fs.readdir sorts; a Dir does not). */
function rawOrder(dir: string): string[] {
  const d = opendirSync(dir);
  const names: string[] = [];
  for (let e = d.readSync(); e; e = d.readSync()) names.push(e.name);
  d.closeSync();
  return names;
}

const byHash = (names: string[]) => [...names].sort((a, b) => kernfsNameHash(a) - kernfsNameHash(b) || (a < b ? -1 : a > b ? 1 : 0));

const SYSFS_MAGIC = 0x62656572;
const realSysfs = (() => {
  try {
    return statfsSync('/sys').type === SYSFS_MAGIC;
  } catch {
    return false;
  }
})();

t.test(
  `the hash orders a real /sys as the kernel does (${os.release()})`,
  { skip: realSysfs ? false : '/sys is not sysfs here' },
  async t => {
    let checked = 0;
    for (const dir of ['/sys', '/sys/kernel', '/sys/class', '/sys/bus', '/sys/devices/system/cpu', '/sys/class/net/lo', '/sys/module']) {
      let names: string[];
      try {
        names = rawOrder(dir);
      } catch {
        continue;
      }
      if (names.length < 3) continue;
      t.same(names, byHash(names), dir);
      checked++;
    }
    t.ok(checked >= 3, `${checked} directories checked`);
    t.equal(kernfsNameHash(''), 2, 'hashes 0 and 1 are reserved');
  },
);

for (const profile of ['modern', 'legacy'])
  t.test(`${profile}: a mounted tree lists in kernfs order`, async t => {
    const d = await startDaemon(t, { command: mdevfsMount('--profile', profile) });
    const U = ['0f000000-0000-4000-8000-000000000001', '0f000000-0000-4000-8000-000000000002', '0f000000-0000-4000-8000-000000000003'];
    for (const u of U) await sh(`echo ${u} > ${d.p('devices/virtual/mtty/mtty/mdev_supported_types/mtty-1/create')}`);
    for (const rel of ['', 'class', 'bus/mdev', 'bus/mdev/devices', 'devices/virtual/mtty/mtty', `devices/virtual/mtty/mtty/${U[0]}`]) {
      const names = rawOrder(path.join(d.dir, rel));
      t.ok(names.length >= 3, `${rel || '/'}: ${names.length} entries`);
      t.same(names, byHash(names), rel || '/');
    }
    const ls = await sh(`ls -f ${d.p('bus/mdev/devices')}`);
    t.same(
      String(ls.stdout)
        .split('\n')
        .filter(n => n && n !== '.' && n !== '..'),
      byHash(U),
      'ls -f (no sorting) shows the kernel order, not creation order',
    );
  });
