/**
 * The sysfs presentation of the mdev core: builds a kernfs tree shaped like
 * /sys (bus/ class/ devices/ kernel/) and keeps it equal to the core's state.
 *
 * On every `change` event the presenter *reconciles* the named object's nodes
 * with the core's state fields (CoreDevice.state / hasRemoveFile / typeLinked /
 * boundDriver / iommuGroup / vfioGroupMinor / vfioDevIndex, the driver list,
 * the parent list, the group list):
 * it never interprets "what changed", so replaying, skipping or coalescing
 * events cannot leave the tree wrong. Events are handled synchronously, so a
 * device's files exist by the time the core's `create()` resolves.
 *
 * Profiles (mdev-abi.md §1): 'modern' (today's kernel) and 'legacy' (4.10,
 * §1.7: type dirs with only `create`, `devices/` and the vendor's standard
 * attributes, the parent's dev_attr_groups, a group dir holding only devices/).
 *
 * A plugin's own attributes are created before the generic files of the same
 * directory, so a vendor file with a standard name (a parent's `uevent`, a
 * type's `name`) replaces the generic one; other duplicates are logged and
 * dropped. Plugin show/store calls are bounded (attrTimeoutMs → ETIMEDOUT).
 */
import type {
  Attribute, AttributeGroup, MdevType, Parent, ParentDeviceSpec, Profile,
} from '../core/api.js';
import { MdevError } from '../core/errno.js';
import { VFIO_DEV_MAJOR, VFIO_GROUP_MAJOR, type CoreChange, type CoreDevice, type CoreParent, type MdevCoreApi } from '../core/model.js';
import { CoreView } from '../core/core-view.js';
import { bounded } from './bounded.js';
import { KDir, KernfsRoot, KLink, KNode, type AttrOps } from '../kernfs/index.js';

export interface PresenterOptions {
  /** Bound on a plugin attribute's show/store; past it the read/write fails with ETIMEDOUT. Default 5000. */
  attrTimeoutMs?: number;
  /** Diagnostics (reconcile failures, unsupported writes). */
  log?: (message: string) => void;
}

interface TypeRec {
  type: MdevType;
  dir: KDir;
  devices: KDir;
}

interface ParentRec {
  parent: CoreParent;
  dir: KDir;
  /** Nodes created inside `dir` on behalf of this parent. */
  owned: KNode[];
  /** Nodes created elsewhere (class/bus links, the parent's group dir...). */
  external: KNode[];
  types: Map<string, TypeRec>;
  /** Its presented devices, so that tearing it down does not walk every device. */
  devices: Set<DeviceRec>;
}

interface GroupRec {
  dir: KDir;
  devices: KDir;
  /** Devices whose iommu_group link points here. */
  users: Set<DeviceRec>;
}

interface DeviceRec {
  uuid: string;
  parentName: string;
  dir: KDir;
  busLink: KLink;
  remove?: KNode;
  typeLink?: KLink;
  typeBackLink?: KLink;
  driver?: { name: string; link: KLink; backLink: KLink };
  group?: { id: number; link: KLink; backLink: KLink };
  vendor?: KNode[];
  /** Modern: /sys/devices/virtual/vfio/<N> (the group char device) and class/vfio/<N>. */
  vfioGroup?: { id: number; minor: number; dir: KDir; classLink: KLink };
  /** Modern: <uuid>/vfio-dev/vfio<k> and class/vfio-dev/vfio<k>. */
  vfioDev?: { k: number; glue: KDir; dir: KDir; classLink: KLink };
}

/** Default mode of a plugin attribute (api.ts Attribute.mode). */
export function defaultAttrMode(a: { show?: unknown; store?: unknown }): number {
  if (a.show && a.store) return 0o644;
  if (a.store) return 0o200;
  return 0o444;
}

/** kobject_synth_uevent's parse of a uevent write: an action word, optional args. */
const UEVENT_ACTIONS = new Set(['add', 'remove', 'change', 'move', 'online', 'offline', 'bind', 'unbind']);
export function parseUeventWrite(data: Buffer): void {
  let s = data.toString('latin1');
  if (s.endsWith('\n') || s.endsWith('\0')) s = s.slice(0, -1);
  const sp = s.indexOf(' ');
  const action = sp < 0 ? s : s.slice(0, sp);
  if (!UEVENT_ACTIONS.has(action)) throw new MdevError('EINVAL', `uevent: unknown action '${action}'`);
}

/** sysfs_streq: equal, ignoring one trailing newline on either side. */
function sysfsStreq(buf: Buffer, word: string): boolean {
  let s = buf.toString('latin1');
  if (s.endsWith('\n')) s = s.slice(0, -1);
  return s === word;
}

function bufName(buf: Buffer): string {
  let s = buf.toString('latin1');
  if (s.endsWith('\n')) s = s.slice(0, -1);
  return s;
}

const CONST = (text: string): AttrOps => ({ show: () => text });

export class SysfsPresenter extends CoreView {
  readonly root = new KernfsRoot();
  readonly profile: Profile;
  private readonly attrTimeoutMs: number;
  private readonly log: (m: string) => void;

  private readonly bus: KDir;
  private readonly busMdev: KDir;
  private readonly busMdevDevices: KDir;
  private readonly busMdevDrivers: KDir;
  private readonly classDir: KDir;
  private readonly devicesDir: KDir;
  private readonly groupsDir: KDir;

  private readonly drivers = new Map<string, KDir>();
  /** Devices whose driver link points at each driver (unregistering one walks only these). */
  private readonly driverUsers = new Map<string, Set<DeviceRec>>();
  private readonly parents = new Map<string, ParentRec>();
  private readonly devices = new Map<string, DeviceRec>();
  /** iommu group dirs of mediated devices. */
  private readonly groups = new Map<number, GroupRec>();
  /** Directories created only as path components (pruned when empty). */
  private readonly implicit = new Set<KDir>();
  private autoprobe = true;

  constructor(core: MdevCoreApi, opts: PresenterOptions = {}) {
    super(core);
    this.profile = core.profile;
    this.attrTimeoutMs = opts.attrTimeoutMs ?? 5000;
    this.log = opts.log ?? (() => {});

    const r = this.root;
    this.bus = r.mkdir('bus');
    this.classDir = r.mkdir('class');
    this.devicesDir = r.mkdir('devices');
    this.devicesDir.mkdir('virtual');
    const kernel = r.mkdir('kernel');
    this.groupsDir = kernel.mkdir('iommu_groups');

    // /sys/bus/mdev (drivers/vfio/mdev/mdev_driver.c bus_register)
    this.busMdev = this.bus.mkdir('mdev');
    this.busMdevDevices = this.busMdev.mkdir('devices');
    this.busMdevDrivers = this.busMdev.mkdir('drivers');
    this.busMdev.attr('drivers_autoprobe', 0o644, {
      show: () => (this.autoprobe ? '1\n' : '0\n'),
      store: d => { this.autoprobe = d[0] !== 0x30; /* '0' */ },
    });
    this.busMdev.attr('drivers_probe', 0o200, {
      store: d => {
        if (!this.core.device(bufName(d))) throw new MdevError('ENODEV');
      },
    });
    this.busMdev.attr('uevent', 0o200, { store: parseUeventWrite });
  }

  /** Reconcile everything with the core (also the answer to any inconsistency). */
  syncAll(): void {
    this.guard('drivers', () => this.syncDrivers());
    this.guard('parents', () => this.syncParents());
    const seen = new Set<string>();
    for (const d of this.core.devices()) {
      seen.add(d.uuid);
      this.guard(d.uuid, () => this.syncDevice(d));
    }
    for (const [uuid, rec] of this.devices) if (!seen.has(uuid)) this.teardownDevice(rec);
    this.guard('groups', () => this.syncGroups());
  }

  protected handle(c: CoreChange): void {
    switch (c.kind) {
      case 'driver-added':
      case 'driver-removed':
        this.guard(c.kind, () => this.syncDrivers());
        break;
      case 'parent-added':
      case 'parent-removed':
        this.guard(c.kind, () => this.syncParents());
        break;
      case 'device-changed':
        this.guard(c.device.uuid, () => this.syncDevice(c.device));
        break;
      case 'group-added':
      case 'group-removed':
        this.guard(c.kind, () => this.syncGroup(c.group));
        break;
    }
  }

  private guard(what: string, fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.log(`sysfs: reconciling ${what} failed: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  // -------------------------------------------------------------------------
  // Bus drivers: /sys/bus/mdev/drivers/<drv>

  private syncDrivers(): void {
    const want = new Set(this.core.drivers());
    for (const name of want) this.ensureDriver(name);
    for (const [name, dir] of this.drivers) {
      if (want.has(name)) continue;
      // Devices still bound to it lose their driver link (normally unbound first).
      for (const rec of [...(this.driverUsers.get(name) ?? [])]) this.dropDriverLinks(rec);
      this.driverUsers.delete(name);
      dir.remove();
      this.drivers.delete(name);
    }
  }

  private ensureDriver(name: string): KDir {
    let dir = this.drivers.get(name);
    if (dir && !dir.dead) return dir;
    dir = this.busMdevDrivers.mkdir(name);
    const self = dir;
    // drivers/base/bus.c bind_store / unbind_store
    dir.attr('bind', 0o200, {
      store: d => {
        const dev = this.core.device(bufName(d));
        if (dev && dev.boundDriver !== undefined) throw new MdevError('EBUSY');
        throw new MdevError('ENODEV');
      },
    });
    dir.attr('unbind', 0o200, {
      store: d => {
        const dev = this.core.device(bufName(d));
        if (!dev || dev.boundDriver !== name || self.dead) throw new MdevError('ENODEV');
        this.log(`sysfs: unbinding ${dev.uuid} from ${name} through sysfs is not supported`);
        throw new MdevError('EOPNOTSUPP');
      },
    });
    dir.attr('uevent', 0o200, { store: parseUeventWrite });
    this.drivers.set(name, dir);
    return dir;
  }

  // -------------------------------------------------------------------------
  // Parents

  private syncParents(): void {
    const want = new Map<string, CoreParent>();
    for (const p of this.core.parents()) want.set(p.name, p);
    for (const [name, rec] of this.parents) {
      if (want.get(name) !== rec.parent) this.teardownParent(rec);
    }
    for (const [name, p] of want) {
      if (!this.parents.has(name)) this.buildParent(p);
    }
  }

  private splitPath(path: string): { dirPath: string; name: string } {
    const parts = path.split('/').filter(Boolean);
    const name = parts.pop();
    if (!name) throw new MdevError('EINVAL', `bad parent path '${path}'`);
    return { dirPath: parts.join('/'), name };
  }

  /** ensurePath that remembers which directories it had to create. */
  private ensureImplicit(base: KDir, rel: string): KDir {
    let d = base;
    for (const c of rel.split('/')) {
      if (!c) continue;
      const existing = d.get(c);
      if (existing instanceof KDir) {
        d = existing;
      } else {
        d = d.mkdir(c);
        this.implicit.add(d);
      }
    }
    return d;
  }

  /** Remove empty directories that exist only as path components, upward from `d`. */
  /** Remove a node, then any implicit directories that its removal left empty. */
  private removePruning(n: KNode): void {
    const up = n.parent;
    n.remove();
    this.prune(up);
  }

  private prune(d: KDir | null): void {
    while (d && this.implicit.has(d) && d.children.size === 0) {
      const up: KDir | null = d.parent;
      this.implicit.delete(d);
      d.remove();
      d = up;
    }
  }

  private buildParent(p: CoreParent): void {
    const spec: Readonly<ParentDeviceSpec> = p.device;
    const { dirPath, name } = this.splitPath(spec.path);
    const container = this.ensureImplicit(this.root, dirPath);
    let dir: KDir;
    const existing = container.get(name);
    if (existing instanceof KDir && this.implicit.has(existing)) {
      dir = existing; // a nested parent made it a path component first: take it over
      this.implicit.delete(existing);
    } else {
      dir = container.mkdir(name);
    }
    const rec: ParentRec = { parent: p, dir, owned: [], external: [], types: new Map(), devices: new Set() };
    this.parents.set(p.name, rec);
    const own = <T extends KNode>(n: T): T => { rec.owned.push(n); return n; };

    // The vendor's identity files first, so they can override the generic ones.
    for (const g of spec.attrs ?? []) this.addGroup(dir, g, p as Parent, own, `${p.name}`);
    if (this.profile === 'legacy') {
      for (const g of p.ops.devAttrGroups ?? []) this.addGroup(dir, g, p as Parent, own, `${p.name}`);
    }

    // subsystem link and the class/bus view of the parent
    if (spec.subsystem) {
      if ('class' in spec.subsystem) {
        const cls = this.ensureImplicit(this.classDir, spec.subsystem.class);
        if (!dir.has('subsystem')) own(dir.symlink('subsystem', cls));
        if (!cls.has(name)) rec.external.push(cls.symlink(name, dir));
      } else {
        const bus = this.ensureBus(spec.subsystem.bus);
        if (!dir.has('subsystem')) own(dir.symlink('subsystem', bus));
        const devs = bus.get('devices') as KDir;
        if (!devs.has(name)) rec.external.push(devs.symlink(name, dir));
        if (spec.driver) {
          const drv = (bus.get('drivers') as KDir).ensureDir(spec.driver);
          if (!dir.has('driver')) own(dir.symlink('driver', drv));
          if (!drv.has(name)) rec.external.push(drv.symlink(name, dir));
        }
      }
    }

    // The parent's own IOMMU group (a physical device's group).
    if (spec.iommuGroup !== undefined) {
      const gname = String(spec.iommuGroup);
      let g = this.groupsDir.get(gname);
      if (!(g instanceof KDir)) {
        const gd = this.groupsDir.mkdir(gname);
        gd.mkdir('devices');
        if (this.profile === 'modern') {
          gd.attr('reserved_regions', 0o444, CONST('0x00000000fee00000 0x00000000feefffff msi\n'));
          gd.attr('type', 0o644, {
            show: () => 'DMA\n',
            store: () => { throw new MdevError('EBUSY'); },
          });
        }
        rec.external.push(gd);
        g = gd;
      }
      const gdevs = (g as KDir).get('devices') as KDir;
      if (!gdevs.has(name)) rec.external.push(gdevs.symlink(name, dir));
      if (!dir.has('iommu_group')) own(dir.symlink('iommu_group', g));
    }

    if (!dir.has('uevent')) {
      own(dir.attr('uevent', 0o644, {
        show: () => (spec.driver ? `DRIVER=${spec.driver}\n` : ''),
        store: parseUeventWrite,
      }));
    }
    if (!dir.has('power')) own(this.addPower(dir));

    // mdev_supported_types/<prefix>-<id>/
    const types = own(dir.mkdir('mdev_supported_types'));
    for (const t of p.types) rec.types.set(t.id, this.buildType(types, t));

    // /sys/class/mdev_bus/<name>
    const mdevBus = this.classDir.ensureDir('mdev_bus');
    if (!mdevBus.has(p.name)) rec.external.push(mdevBus.symlink(p.name, dir));
  }

  private ensureBus(name: string): KDir {
    const existing = this.bus.get(name);
    if (existing instanceof KDir) return existing;
    const b = this.bus.mkdir(name);
    b.mkdir('devices');
    b.mkdir('drivers');
    b.attr('drivers_autoprobe', 0o644, { show: () => '1\n', store: () => {} });
    b.attr('drivers_probe', 0o200, { store: () => { throw new MdevError('ENODEV'); } });
    b.attr('uevent', 0o200, { store: parseUeventWrite });
    return b;
  }

  private buildType(typesDir: KDir, t: MdevType): TypeRec {
    const dir = typesDir.mkdir(t.id);
    const spec = t.spec;
    dir.attr('create', 0o200, {
      store: async data => { await this.core.create(t, data); },
    });
    const std = {
      name: () => dir.attr('name', 0o444, { show: () => `${t.name}\n` }),
      device_api: () => dir.attr('device_api', 0o444, { show: () => `${t.deviceApi}\n` }),
      available_instances: () => dir.attr('available_instances', 0o444, {
        show: () => `${this.core.availableInstances(t)}\n`,
      }),
      description: () => dir.attr('description', 0o444, {
        show: () => bounded(
          () => (typeof spec.description === 'function' ? spec.description(t) : spec.description ?? ''),
          this.attrTimeoutMs, `${t.id}/description`),
      }),
    } as const;
    let wanted: Array<keyof typeof std>;
    if (this.profile === 'legacy') {
      wanted = spec.legacyAttrs ? [...spec.legacyAttrs] : [
        ...(spec.name !== undefined ? ['name' as const] : []),
        ...(spec.description !== undefined ? ['description' as const] : []),
        'device_api', 'available_instances',
      ];
    } else {
      wanted = ['name', 'available_instances', 'device_api'];
      if (spec.description !== undefined) wanted.push('description');
    }
    for (const a of spec.attrs ?? []) this.addAttr(dir, a, t, `${t.id}`);
    for (const w of wanted) if (!dir.has(w)) std[w]();
    const devices = dir.mkdir('devices');
    return { type: t, dir, devices };
  }

  private addPower(dir: KDir): KDir {
    // drivers/base/power/sysfs.c (runtime PM never enabled)
    const power = dir.mkdir('power');
    let control = 'auto';
    power.attr('autosuspend_delay_ms', 0o644, {
      show: () => { throw new MdevError('EIO'); },
      store: () => { throw new MdevError('EIO'); },
    });
    power.attr('control', 0o644, {
      show: () => `${control}\n`,
      store: d => {
        if (sysfsStreq(d, 'auto')) control = 'auto';
        else if (sysfsStreq(d, 'on')) control = 'on';
        else throw new MdevError('EINVAL');
      },
    });
    power.attr('runtime_active_time', 0o444, CONST('0\n'));
    power.attr('runtime_status', 0o444, CONST('unsupported\n'));
    power.attr('runtime_suspended_time', 0o444, CONST('0\n'));
    return power;
  }

  /** A plugin attribute, bounded. */
  private addAttr<C>(dir: KDir, a: Attribute<C>, ctx: C, where: string): KNode | undefined {
    if (dir.has(a.name)) {
      this.log(`sysfs: ${where}: duplicate attribute '${a.name}' ignored`);
      return undefined;
    }
    const ms = this.attrTimeoutMs;
    const label = `${where}/${a.name}`;
    const ops: AttrOps = {};
    if (a.show) {
      const show = a.show.bind(a);
      ops.show = () => bounded(() => show(ctx), ms, `${label} show`);
    }
    if (a.store) {
      const store = a.store.bind(a);
      ops.store = async data => { await bounded(() => store(ctx, data.toString('utf8')), ms, `${label} store`); };
    }
    return dir.attr(a.name, a.mode ?? defaultAttrMode(a), ops);
  }

  /** A group: its attributes in `dir`, or in a subdirectory named after the group. */
  private addGroup<C>(dir: KDir, g: AttributeGroup<C>, ctx: C, own: (n: KNode) => KNode, where: string): void {
    let target = dir;
    if (g.name) {
      const existing = dir.get(g.name);
      if (existing instanceof KDir) {
        target = existing;
      } else {
        target = dir.mkdir(g.name);
        own(target);
      }
    }
    for (const a of g.attrs) {
      const n = this.addAttr(target, a, ctx, g.name ? `${where}/${g.name}` : where);
      if (n && target === dir) own(n);
    }
  }

  private teardownParent(rec: ParentRec): void {
    for (const d of [...rec.devices]) this.teardownDevice(d);
    this.parents.delete(rec.parent.name);
    for (const n of rec.external) this.removePruning(n);
    for (const n of rec.owned) n.remove();
    if (rec.dir.children.size === 0) {
      this.removePruning(rec.dir);
    } else {
      // Something else (a nested parent) still lives below: keep it as a path component.
      this.implicit.add(rec.dir);
    }
  }

  // -------------------------------------------------------------------------
  // Mediated devices

  private syncDevice(dev: CoreDevice): void {
    const uuid = dev.uuid;
    let rec = this.devices.get(uuid);
    if (dev.state === 'gone') {
      if (rec) this.teardownDevice(rec);
      return;
    }
    let prec = this.parents.get(dev.parent.name);
    if (!prec) {
      this.syncParents();
      prec = this.parents.get(dev.parent.name);
      if (!prec) throw new MdevError('ENODEV', `device ${uuid}: parent ${dev.parent.name} is not presented`);
    }
    if (rec && (rec.dir.dead || rec.parentName !== dev.parent.name)) {
      this.teardownDevice(rec);
      rec = undefined;
    }
    if (!rec) {
      // device_add(): the dir, uevent, power/, subsystem, /sys/bus/mdev/devices/<uuid>
      const dir = prec.dir.mkdir(uuid);
      dir.attr('uevent', 0o644, {
        show: () => {
          const d = this.core.device(uuid);
          return d?.boundDriver ? `DRIVER=${d.boundDriver}\n` : '';
        },
        store: parseUeventWrite,
      });
      this.addPower(dir);
      dir.symlink('subsystem', this.busMdev);
      const busLink = this.busMdevDevices.symlink(uuid, dir);
      rec = { uuid, parentName: dev.parent.name, dir, busLink };
      this.devices.set(uuid, rec);
      prec.devices.add(rec);
    }
    const dir = rec.dir;

    // remove (0200) iff hasRemoveFile
    if (dev.hasRemoveFile && (!rec.remove || rec.remove.dead)) {
      rec.remove = dir.attr('remove', 0o200, {
        store: async data => {
          const d = this.core.device(uuid);
          if (!d || d.state === 'gone') throw new MdevError('ENODEV');
          await this.core.removeStore(d, data);
        },
      });
    } else if (!dev.hasRemoveFile && rec.remove) {
      rec.remove.remove();
      rec.remove = undefined;
    }

    // mdev_type + mdev_supported_types/<type>/devices/<uuid> iff typeLinked
    const trec = prec.types.get(dev.type.id);
    if (dev.typeLinked && trec) {
      if (!rec.typeLink || rec.typeLink.dead || rec.typeLink.target !== trec.dir) {
        this.dropTypeLinks(rec);
        rec.typeLink = dir.symlink('mdev_type', trec.dir);
        rec.typeBackLink = trec.devices.symlink(uuid, dir);
      }
    } else {
      this.dropTypeLinks(rec);
    }

    // driver + bus/mdev/drivers/<drv>/<uuid> iff boundDriver
    if (dev.boundDriver !== undefined) {
      if (!rec.driver || rec.driver.name !== dev.boundDriver || rec.driver.link.dead || rec.driver.backLink.dead) {
        this.dropDriverLinks(rec);
        const drv = this.ensureDriver(dev.boundDriver);
        rec.driver = {
          name: dev.boundDriver,
          link: dir.symlink('driver', drv),
          backLink: drv.symlink(uuid, dir),
        };
        let users = this.driverUsers.get(dev.boundDriver);
        if (!users) this.driverUsers.set(dev.boundDriver, users = new Set());
        users.add(rec);
      }
    } else {
      this.dropDriverLinks(rec);
    }

    // iommu_group + kernel/iommu_groups/<N>/devices/<uuid> iff iommuGroup
    if (dev.iommuGroup !== undefined) {
      const g = this.ensureGroup(dev.iommuGroup);
      if (!rec.group || rec.group.id !== dev.iommuGroup || rec.group.link.dead || rec.group.backLink.dead) {
        this.dropGroupLinks(rec);
        rec.group = {
          id: dev.iommuGroup,
          link: dir.symlink('iommu_group', g.dir),
          backLink: g.devices.symlink(uuid, dir),
        };
        g.users.add(rec);
      }
    } else {
      this.dropGroupLinks(rec);
    }

    // Vendor attributes (mdev_attr_groups / driver dev_groups): modern while
    // bound (added by really_probe after probe); legacy once the vendor's
    // create() succeeded.
    const wantVendor = this.profile === 'legacy' ? dev.state === 'active' : dev.boundDriver !== undefined;
    if (wantVendor && !rec.vendor) {
      const nodes: KNode[] = [];
      for (const g of dev.parent.ops.mdevAttrGroups ?? []) {
        this.addGroup(dir, g, dev, n => { nodes.push(n); return n; }, uuid);
      }
      rec.vendor = nodes;
    } else if (!wantVendor && rec.vendor) {
      for (const n of rec.vendor) n.remove();
      rec.vendor = undefined;
    }

    this.syncVfio(rec, dev);
  }

  // -------------------------------------------------------------------------
  // VFIO objects of a bound mdev (mdev-abi.md §1.5): the group char device
  // /sys/devices/virtual/vfio/<N> (class vfio; both profiles) and the
  // per-device <uuid>/vfio-dev/vfio<k> (class vfio-dev; modern only), each
  // with its class link.

  private syncVfio(rec: DeviceRec, dev: CoreDevice): void {
    const group = dev.iommuGroup;
    const minor = dev.vfioGroupMinor;
    if (minor !== undefined && group !== undefined) {
      const have = rec.vfioGroup;
      if (!have || have.id !== group || have.minor !== minor || have.dir.dead || have.classLink.dead) {
        this.dropVfioGroup(rec);
        const name = String(group);
        const container = this.ensureImplicit(this.devicesDir, 'virtual/vfio');
        const stale = container.get(name);
        if (stale && !stale.dead) stale.remove();
        const dir = container.mkdir(name);
        const cls = this.ensureImplicit(this.classDir, 'vfio');
        this.charDevFiles(dir, VFIO_GROUP_MAJOR, minor, `vfio/${name}`, cls);
        const old = cls.get(name);
        if (old && !old.dead) old.remove();
        rec.vfioGroup = { id: group, minor, dir, classLink: cls.symlink(name, dir) };
      }
    } else {
      this.dropVfioGroup(rec);
    }

    const k = dev.vfioDevIndex;
    if (k !== undefined) {
      const have = rec.vfioDev;
      if (!have || have.k !== k || have.dir.dead || have.classLink.dead) {
        this.dropVfioDev(rec);
        const name = `vfio${k}`;
        // The class glue directory (get_device_parent): created with its first
        // device, removed with its last.
        const existing = rec.dir.get('vfio-dev');
        const glue = existing instanceof KDir ? existing : rec.dir.mkdir('vfio-dev');
        const dir = glue.mkdir(name);
        const cls = this.ensureImplicit(this.classDir, 'vfio-dev');
        this.charDevFiles(dir, VFIO_DEV_MAJOR, k, `vfio/devices/${name}`, cls);
        dir.symlink('device', rec.dir);
        const old = cls.get(name);
        if (old && !old.dead) old.remove();
        rec.vfioDev = { k, glue, dir, classLink: cls.symlink(name, dir) };
      }
    } else {
      this.dropVfioDev(rec);
    }
  }

  /** A class device with a devt: dev, uevent (MAJOR, MINOR, DEVNAME), subsystem, power/. */
  private charDevFiles(dir: KDir, major: number, minor: number, devname: string, cls: KDir): void {
    dir.attr('dev', 0o444, CONST(`${major}:${minor}\n`));
    dir.attr('uevent', 0o644, {
      show: () => `MAJOR=${major}\nMINOR=${minor}\nDEVNAME=${devname}\n`,
      store: parseUeventWrite,
    });
    dir.symlink('subsystem', cls);
    this.addPower(dir);
  }

  private dropVfioGroup(rec: DeviceRec): void {
    const g = rec.vfioGroup;
    if (!g) return;
    rec.vfioGroup = undefined;
    this.removePruning(g.classLink);
    this.removePruning(g.dir);
  }

  private dropVfioDev(rec: DeviceRec): void {
    const v = rec.vfioDev;
    if (!v) return;
    rec.vfioDev = undefined;
    this.removePruning(v.classLink);
    v.dir.remove();
    if (v.glue.children.size === 0) v.glue.remove();
  }

  private dropTypeLinks(rec: DeviceRec): void {
    rec.typeLink?.remove();
    rec.typeBackLink?.remove();
    rec.typeLink = rec.typeBackLink = undefined;
  }

  private dropDriverLinks(rec: DeviceRec): void {
    if (!rec.driver) return;
    this.driverUsers.get(rec.driver.name)?.delete(rec);
    rec.driver.link.remove();
    rec.driver.backLink.remove();
    rec.driver = undefined;
  }

  private dropGroupLinks(rec: DeviceRec): void {
    if (!rec.group) return;
    this.groups.get(rec.group.id)?.users.delete(rec);
    rec.group.link.remove();
    rec.group.backLink.remove();
    rec.group = undefined;
  }

  private teardownDevice(rec: DeviceRec): void {
    this.dropVfioDev(rec);
    this.dropVfioGroup(rec);
    this.dropTypeLinks(rec);
    this.dropDriverLinks(rec);
    this.dropGroupLinks(rec);
    rec.busLink.remove();
    rec.dir.remove();
    this.parents.get(rec.parentName)?.devices.delete(rec);
    if (this.devices.get(rec.uuid) === rec) this.devices.delete(rec.uuid);
  }

  // -------------------------------------------------------------------------
  // IOMMU groups of mediated devices: /sys/kernel/iommu_groups/<N>

  /**
   * Whether the core has group `id`. Without an O(1) membership test on
   * iommuGroups(), ask groupDevices() (a mediated device's group exists
   * exactly while it holds its device), so bulk creates stay linear.
   */
  private hasGroup(id: number): boolean {
    const groups = this.core.iommuGroups() as Iterable<number> & { has?: (n: number) => boolean };
    if (typeof groups.has === 'function') return groups.has(id);
    for (const _ of this.core.groupDevices(id)) return true;
    return false;
  }

  private syncGroups(): void {
    const want = new Set(this.core.iommuGroups());
    for (const id of want) this.ensureGroup(id);
    for (const id of [...this.groups.keys()]) if (!want.has(id)) this.dropGroup(id);
  }

  private syncGroup(id: number): void {
    if (this.hasGroup(id)) this.ensureGroup(id);
    else this.dropGroup(id);
  }

  private ensureGroup(id: number): GroupRec {
    const have = this.groups.get(id);
    if (have && !have.dir.dead) return have;
    const name = String(id);
    const stale = this.groupsDir.get(name);
    if (stale && !stale.dead) {
      if (have || !(stale instanceof KDir)) stale.remove();
      else throw new MdevError('EEXIST', `iommu group ${id} is already a parent device's group`);
    }
    const dir = this.groupsDir.mkdir(name);
    const devices = dir.mkdir('devices');
    if (this.profile === 'modern') {
      // drivers/vfio/group.c vfio_noiommu_group_alloc → iommu_group_set_name
      dir.attr('name', 0o444, CONST('vfio-noiommu\n'));
      dir.attr('reserved_regions', 0o444, CONST(''));
      dir.attr('type', 0o644, {
        show: () => 'unknown\n',
        store: () => { throw new MdevError('EINVAL'); }, // no default domain
      });
    }
    const g: GroupRec = { dir, devices, users: new Set() };
    this.groups.set(id, g);
    return g;
  }

  private dropGroup(id: number): void {
    const g = this.groups.get(id);
    if (!g) return;
    for (const rec of [...g.users]) this.dropGroupLinks(rec);
    g.dir.remove();
    this.groups.delete(id);
  }

  // -------------------------------------------------------------------------
  // Introspection for the CLI and tests

  get parentCount(): number {
    return this.parents.size;
  }
}
