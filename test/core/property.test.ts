/**
 * Random sequences of register/create/remove/unregister/driver hot-plug/open
 * against a small reference model, checking the invariants after every step.
 */
import t, { type Test } from 'tap';
import type { MdevType, Profile } from '../../src/core/api.js';
import type { VfioDeviceHandle } from '../../src/core/model.js';
import { MdevError } from '../../src/core/errno.js';
import { errnoOf, harness, uuid, type Harness } from './helpers.js';
import { createStore, removeStore } from '../../src/sysfs/stores.js';

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

interface MParent {
  name: string;
  max: number;
  /** Plugin pool (getAvailable model) or the core counter. */
  pool: { free: number } | undefined;
  group: number | undefined;
  devices: string[];
  failNext: { v: boolean };
  vetoNext: { v: boolean };
}

interface MDevice {
  parent: string;
  group: number | undefined;
  handles: VfioDeviceHandle[];
}

const NAMES = ['p0', 'p1', 'p2', 'p3'];
const UUIDS = Array.from({ length: 24 }, (_, i) => uuid(i + 1));

async function run(t: Test, profile: Profile, seed: number, steps: number): Promise<void> {
  const rnd = mulberry32(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const h: Harness = harness(profile);
  const modern = profile === 'modern';
  const parents = new Map<string, MParent>();
  const devices = new Map<string, MDevice>();
  const drivers = new Set<string>(modern ? [] : ['vfio_mdev']);
  /** The core's own vfio_mdev is still registered (shutdown keeps only that one). */
  let coreVfioMdev = !modern;
  const usedGroups = new Set<number>();
  const reserved = new Map<number, number>();
  const driverOf = (p: string) => (modern ? `${p}_drv` : 'vfio_mdev');
  const lowestFree = () => {
    let g = 0;
    while (usedGroups.has(g) || reserved.has(g)) g++;
    return g;
  };
  const typeOf = (p: string, i = 0): MdevType => h.core.parent(p)!.types[i]!;
  let failures = 0;

  const expectAvailable = (p: MParent): number => {
    if (p.pool) return p.pool.free;
    if (modern) return p.max - p.devices.length;
    return Math.max(0, p.max - p.devices.length);
  };

  const bind = (u: string) => {
    const d = devices.get(u)!;
    d.group = lowestFree();
    usedGroups.add(d.group);
  };
  const unbind = (u: string) => {
    const d = devices.get(u)!;
    if (d.group !== undefined) usedGroups.delete(d.group);
    d.group = undefined;
  };
  const dropDevice = (u: string) => {
    const d = devices.get(u)!;
    unbind(u);
    const p = parents.get(d.parent)!;
    p.devices.splice(p.devices.indexOf(u), 1);
    devices.delete(u);
  };

  const check = (step: string): boolean => {
    const errs: string[] = [];
    const coreDevs = [...h.core.devices()];
    const ids = coreDevs.map(d => d.uuid);
    if (new Set(ids).size !== ids.length) errs.push('duplicate uuid');
    if (ids.sort().join() !== [...devices.keys()].sort().join()) errs.push(`devices ${ids.join()} != model ${[...devices.keys()].join()}`);
    for (const d of coreDevs) {
      const m = devices.get(d.uuid);
      if (d.state !== 'active') errs.push(`${d.uuid} is ${d.state}`);
      if (h.core.parent(d.parent.name) !== d.parent) errs.push(`${d.uuid}: dead parent`);
      if ((d.boundDriver === undefined) !== (d.iommuGroup === undefined)) errs.push(`${d.uuid}: bound without group or vice versa`);
      if (m && d.iommuGroup !== m.group) errs.push(`${d.uuid}: group ${d.iommuGroup}, model ${m.group}`);
      if (d.openCount !== (m?.handles.length ?? 0)) errs.push(`${d.uuid}: openCount ${d.openCount}`);
    }
    const groups = [...h.core.iommuGroups()];
    if (new Set(groups).size !== groups.length) errs.push('duplicate group');
    if (groups.length !== coreDevs.filter(d => d.iommuGroup !== undefined).length) errs.push('group count');
    for (const g of groups) if (reserved.has(g)) errs.push(`group ${g} is reserved by a parent`);
    for (const p of parents.values()) {
      const cp = h.core.parent(p.name);
      if (!cp) {
        errs.push(`parent ${p.name} missing`);
        continue;
      }
      for (const ty of cp.types) {
        const a = h.core.availableInstances(ty);
        if (a < 0) errs.push(`${ty.id}: negative available`);
        if (a !== expectAvailable(p)) errs.push(`${ty.id}: available ${a}, model ${expectAvailable(p)}`);
      }
      if ([...h.core.devicesOfParent(cp)].length !== p.devices.length) errs.push(`${p.name}: devicesOfParent`);
      const perType = cp.types.reduce((n, ty) => n + [...h.core.devicesOfType(ty)].length, 0);
      if (perType !== p.devices.length) errs.push(`${p.name}: devicesOfType`);
    }
    if ([...h.core.parents()].length !== parents.size) errs.push('parent count');
    if (h.core.drivers().slice().sort().join() !== [...drivers].sort().join())
      errs.push(`drivers ${h.core.drivers().join()} vs ${[...drivers].join()}`);
    h.uevents.forEach((e, i) => {
      if (e.SEQNUM !== i + 1) errs.push(`SEQNUM ${e.SEQNUM} at ${i}`);
    });
    if (errs.length) {
      t.fail(`${profile} seed ${seed} after ${step}: ${errs.join('; ')}`);
      failures++;
    }
    return errs.length === 0;
  };

  const expectErr = (step: string, got: string | undefined, want: string | undefined) => {
    if (got !== want) {
      t.fail(`${profile} seed ${seed} ${step}: got ${got}, want ${want}`);
      failures++;
    }
  };

  for (let i = 0; i < steps && failures === 0; i++) {
    const r = rnd();
    if (r < 0.12) {
      const name = pick(NAMES);
      const max = Math.floor(rnd() * 5);
      const usePool = rnd() < 0.4;
      const group = rnd() < 0.3 ? Math.floor(rnd() * 6) : undefined;
      const mp: MParent = {
        name,
        max,
        pool: usePool ? { free: max } : undefined,
        group,
        devices: [],
        failNext: { v: false },
        vetoNext: { v: false },
      };
      const want = parents.has(name) ? 'EEXIST' : group !== undefined && usedGroups.has(group) ? 'EBUSY' : undefined;
      const got = await errnoOf(
        h.core.host.registerDevice(
          { path: `devices/virtual/${name}/${name}`, typePrefix: name, subsystem: { class: name }, iommuGroup: group },
          {
            driver: `${name}_drv`,
            deviceApi: 'vfio-pci',
            types: [{ id: 'a' }, { id: 'b' }],
            maxInstances: max,
            getAvailable: mp.pool ? () => mp.pool!.free : undefined,
            create() {
              if (mp.failNext.v) {
                mp.failNext.v = false;
                throw new MdevError('EIO');
              }
              if (mp.pool) {
                if (mp.pool.free < 1) throw new MdevError('ENOSPC');
                mp.pool.free--;
              }
            },
            remove() {
              if (mp.vetoNext.v) {
                mp.vetoNext.v = false;
                throw new MdevError('EBUSY');
              }
              if (mp.pool) mp.pool.free++;
            },
          },
        ),
      );
      expectErr(`register ${name}`, got, want);
      if (!want) {
        parents.set(name, mp);
        if (group !== undefined) reserved.set(group, (reserved.get(group) ?? 0) + 1);
        if (modern) drivers.add(`${name}_drv`);
      }
    } else if (r < 0.55) {
      const p = pick(NAMES);
      const u = pick(UUIDS);
      const mp = parents.get(p);
      if (!mp) continue;
      const fail = rnd() < 0.1;
      mp.failNext.v = fail;
      const existing = devices.get(u);
      let want: string | undefined;
      if (existing) want = 'EEXIST';
      else if (modern && !mp.pool && mp.devices.length >= mp.max) want = 'EUSERS';
      else if (modern && !drivers.has(driverOf(p))) want = 'ENODEV';
      else if (fail) want = 'EIO';
      else if (mp.pool && mp.pool.free < 1) want = 'ENOSPC';
      const got = await errnoOf(createStore(h.core, typeOf(p, rnd() < 0.5 ? 0 : 1), rnd() < 0.5 ? u : `${u.toUpperCase()}\n`));
      mp.failNext.v = false;
      expectErr(`create ${p} ${u}`, got, want);
      if (!want) {
        devices.set(u, { parent: p, group: undefined, handles: [] });
        mp.devices.push(u);
        if (drivers.has(driverOf(p))) bind(u);
      }
    } else if (r < 0.75) {
      const u = pick(UUIDS);
      const d = devices.get(u);
      const dev = h.core.device(u);
      if (!d || !dev) continue;
      const mp = parents.get(d.parent)!;
      const veto = rnd() < 0.15;
      mp.vetoNext.v = veto;
      const how = pick(['remove', '1', '0x1', '0', 'x'] as const);
      // Remove may have to wait for open handles: close them after it starts.
      const pending = errnoOf(how === 'remove' ? h.core.remove(dev) : removeStore(h.core, dev, how));
      const handles = d.handles.splice(0);
      const effective = how !== '0' && how !== 'x';
      if (handles.length && !(effective && !(veto && !modern)))
        d.handles.push(...handles); // nothing to wait for
      else for (const fd of handles) await fd.close();
      const got = await pending;
      mp.vetoNext.v = false;
      const want = how === 'x' ? 'EINVAL' : effective && veto && !modern ? 'EBUSY' : undefined;
      expectErr(`remove ${u} via ${how}`, got, want);
      if (effective && !(veto && !modern)) {
        if (mp.pool && veto) {
          /* modern ignored the veto: the plugin's pool keeps the leak */
        }
        dropDevice(u);
      }
    } else if (r < 0.85) {
      const u = pick(UUIDS);
      const d = devices.get(u);
      if (!d) continue;
      if (d.group === undefined) {
        expectErr(`open unbound ${u}`, await errnoOf(h.core.vfio.open(u)), 'ENODEV');
      } else if (d.handles.length && rnd() < 0.6) {
        await d.handles.pop()!.close();
      } else {
        d.handles.push(await h.core.vfio.open(u));
      }
    } else if (r < 0.93) {
      const p = pick(NAMES);
      const mp = parents.get(p);
      if (!mp) {
        expectErr(`unregister ${p}`, await errnoOf(h.core.host.unregisterDevice(p)), 'ENODEV');
        continue;
      }
      const pending = h.core.host.unregisterDevice(p);
      for (const u of [...mp.devices]) for (const fd of devices.get(u)!.handles.splice(0)) await fd.close();
      await pending;
      for (const u of [...mp.devices]) {
        if (mp.pool) mp.pool.free++;
        dropDevice(u);
      }
      parents.delete(p);
      if (mp.group !== undefined) {
        const n = reserved.get(mp.group)! - 1;
        if (n) reserved.set(mp.group, n);
        else reserved.delete(mp.group);
      }
    } else {
      const name = modern ? `${pick(NAMES)}_drv` : 'vfio_mdev';
      if (drivers.has(name)) {
        const pending = h.core.host.unregisterDriver(name);
        for (const d of devices.values()) if (driverOf(d.parent) === name) for (const fd of d.handles.splice(0)) await fd.close();
        await pending;
        drivers.delete(name);
        if (name === 'vfio_mdev') coreVfioMdev = false;
        for (const [u, d] of devices) if (driverOf(d.parent) === name) unbind(u);
      } else {
        await h.core.host.registerDriver({ name });
        drivers.add(name);
        for (const p of parents.values()) {
          if (driverOf(p.name) !== name) continue;
          for (const u of p.devices) bind(u);
        }
      }
    }
    if (!check(`step ${i}`)) break;
  }

  // Remove every device: counters must be back to their maxima.
  for (const d of devices.values()) for (const fd of d.handles.splice(0)) await fd.close();
  for (const p of parents.values()) p.vetoNext.v = false;
  for (const u of [...devices.keys()]) {
    await h.core.remove(h.core.device(u)!);
    if (parents.get(devices.get(u)!.parent)!.pool) parents.get(devices.get(u)!.parent)!.pool!.free++;
    dropDevice(u);
  }
  for (const p of parents.values()) {
    for (const ty of h.core.parent(p.name)!.types) {
      if (!p.pool && h.core.availableInstances(ty) !== p.max) {
        t.fail(`${profile} seed ${seed}: ${ty.id} available ${h.core.availableInstances(ty)} after removing all, max ${p.max}`);
        failures++;
      }
    }
  }
  check('removing everything');
  await h.core.shutdown();
  const leftovers = [...h.core.devices()].length + [...h.core.parents()].length + [...h.core.iommuGroups()].length;
  if (leftovers !== 0) {
    t.fail(`${profile} seed ${seed}: leftovers after shutdown`);
    failures++;
  }
  if (h.core.drivers().join() !== (coreVfioMdev ? 'vfio_mdev' : '')) {
    t.fail(`${profile} seed ${seed}: drivers left`);
    failures++;
  }
  if (failures === 0) t.pass(`${profile} seed ${seed}: ${steps} steps, ${h.uevents.length} uevents`);
}

for (const profile of ['modern', 'legacy'] as Profile[]) {
  t.test(`${profile}: random operation sequences keep the invariants`, async t => {
    for (let seed = 1; seed <= 25; seed++) await run(t, profile, seed, 400);
  });
}
