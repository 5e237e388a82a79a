/**
 * MdevCore: an in-process model of drivers/vfio/mdev (mdev_core.c,
 * mdev_sysfs.c, mdev_driver.c) with no filesystem in it. The sysfs layer
 * renders its state and forwards create/remove writes; plugins register
 * through `host`; tests and QEMU-like users drive `vfio`.
 *
 * Locking: one FIFO async mutex (mdev_list_lock) serialises every state
 * transition, including the plugin calls inside it (each bounded by
 * callTimeoutMs), so plugins never see two creates/removes at once. Waiting
 * for a VFIO device's last close never holds it. A plugin callback that calls
 * back into a host registration function while the core holds the lock gets
 * EDEADLK at once instead of a timeout.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { EventEmitter } from 'node:events';
import {
  VFIO_PIN_PAGES_MAX_ENTRIES,
  type Awaitable, type DmaUnmapEvent, type MdevDevice, type MdevDriver, type MdevHost, type MdevType,
  type Parent, type ParentDeviceSpec, type ParentOps, type Profile, type Uevent, type VendorPlugin,
} from './api.js';
import {
  VFIO_DEV_MAJOR, VFIO_GROUP_MAJOR,
  type CoreChange, type CoreDevice, type CoreEvents, type CoreOptions, type CoreParent, type MdevCoreApi,
} from './model.js';
import { MdevError, toMdevError } from './errno.js';
import { DeviceImpl } from './device.js';
import { DriverEntry } from './driver.js';
import { Host, PluginRecord, type HostBackend } from './host.js';
import { IommuGroupAllocator } from './iommu-groups.js';
import { kstrtoul } from './kstrtoul.js';
import { Mutex } from './list-lock.js';
import { ParentImpl, TypeImpl, normalisePath, validateParent, type Owner } from './parent.js';
import { DEFAULT_CALL_TIMEOUT_MS, callPlugin } from './plugin-call.js';
import { parseUeventVars, UeventSource } from './uevents.js';
import { canonicalUuid, parseCreateBuffer, writtenBytes } from './uuid.js';
import { VfioUserImpl, type VfioBackend } from './vfio-user.js';

/** The generic bus driver of the 2016 design, registered by the core itself. */
export const VFIO_MDEV_DRIVER = 'vfio_mdev';

interface LockToken { held: boolean }

const message = (e: unknown): string => (e instanceof Error ? e.message : String(e));
const isName = (s: unknown): s is string => typeof s === 'string' && s.length > 0 && !s.includes('/');

export class MdevCore extends EventEmitter<CoreEvents> implements MdevCoreApi {
  readonly profile: Profile;
  readonly callTimeoutMs: number;
  readonly host: MdevHost;
  readonly vfio: VfioUserImpl;

  readonly #lock = new Mutex();
  /** Marks plugin callbacks the core runs while holding #lock. */
  readonly #lockScope = new AsyncLocalStorage<LockToken>();
  readonly #uevents = new UeventSource();
  readonly #groups = new IommuGroupAllocator();
  /** vfio.group_ida (group char device minors) and vfio.device_ida (vfio<k>): lowest free first. */
  readonly #vfioGroupIda = new IommuGroupAllocator();
  readonly #vfioDevIda = new IommuGroupAllocator();
  readonly #drivers = new Map<string, DriverEntry>();
  readonly #parents = new Map<string, ParentImpl>();
  readonly #devices = new Map<string, DeviceImpl>();
  readonly #groupDevice = new Map<number, DeviceImpl>();
  readonly #plugins = new Map<string, PluginRecord>();
  readonly #hostBackend: HostBackend;

  constructor(opts: CoreOptions = {}) {
    super();
    const profile = opts.profile ?? 'modern';
    if (profile !== 'modern' && profile !== 'legacy') throw new MdevError('EINVAL', `unknown profile ${String(profile)}`);
    const timeout = opts.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
    if (!(typeof timeout === 'number' && timeout > 0 && Number.isFinite(timeout))) {
      throw new MdevError('EINVAL', 'callTimeoutMs must be a positive number');
    }
    this.profile = profile;
    this.callTimeoutMs = timeout;
    this.#hostBackend = {
      profile,
      registerDriver: (drv, owner) => this.#registerDriver(drv, owner),
      unregisterDriver: name => this.#unregisterDriver(name),
      registerDevice: (device, ops, owner) => this.#registerDevice(device, ops, owner),
      unregisterDevice: parent => this.#unregisterDevice(parent),
      pinPages: (dev, pfns, prot) => this.#pinPages(dev, pfns, prot),
      unpinPages: (dev, pfns) => this.#unpinPages(dev, pfns),
      log: msg => this.#log(msg),
    };
    this.host = new Host(this.#hostBackend);
    const vfioBackend: VfioBackend = {
      findDevice: uuid => this.#devices.get(canonicalUuid(uuid)),
      call: (fn, what, onLate) => this.#call(fn, what, undefined, onLate),
      changed: dev => this.#changed(dev),
      log: msg => this.#log(msg),
      notifyUnmap: (dev, ev) => this.#notifyUnmap(dev, ev),
    };
    this.vfio = new VfioUserImpl(vfioBackend);
    if (profile === 'legacy') {
      this.#drivers.set(VFIO_MDEV_DRIVER, new DriverEntry({ name: VFIO_MDEV_DRIVER }, undefined, true));
    }
  }

  // -------------------------------------------------------------------------
  // Lookups (all O(1) or iterators over per-object sets)

  drivers(): readonly string[] { return [...this.#drivers.keys()]; }
  parents(): Iterable<CoreParent> { return this.#parents.values(); }
  parent(name: string): CoreParent | undefined { return this.#parents.get(name); }
  device(uuid: string): CoreDevice | undefined {
    return typeof uuid === 'string' ? this.#devices.get(canonicalUuid(uuid)) : undefined;
  }
  devices(): Iterable<CoreDevice> { return this.#devices.values(); }
  devicesOfType(type: MdevType): Iterable<CoreDevice> {
    return type instanceof TypeImpl ? type.devices.values() : [];
  }
  devicesOfParent(parent: Parent): Iterable<CoreDevice> {
    return parent instanceof ParentImpl ? parent.k.devices.values() : [];
  }
  iommuGroups(): Iterable<number> { return this.#groupDevice.keys(); }
  groupDevices(group: number): Iterable<CoreDevice> {
    const d = this.#groupDevice.get(group);
    return d ? [d] : [];
  }

  availableInstances(type: MdevType): number {
    if (!(type instanceof TypeImpl) || this.#parents.get(type.parent.name) !== type.parent) return 0;
    const parent = type.parent;
    const ops = parent.ops;
    if (ops.getAvailable) {
      let n: unknown;
      try {
        n = ops.getAvailable(type);
      } catch (e) {
        this.#log(`${parent.name}: getAvailable(${type.id}) threw: ${message(e)}; showing 0`);
        return 0;
      }
      if (typeof n !== 'number' || Number.isNaN(n)) {
        this.#log(`${parent.name}: getAvailable(${type.id}) returned ${String(n)}, not a number; showing 0`);
        return 0;
      }
      return Math.min(Math.max(0, Math.floor(n)), 0xffffffff); // %u
    }
    if (this.profile === 'modern') return parent.k.available;
    return Math.max(0, (ops.maxInstances ?? 0) - parent.k.devices.size);
  }

  // -------------------------------------------------------------------------
  // Create (mdev_sysfs.c create_store → mdev_device_create)

  async create(type: MdevType, written: Buffer | string): Promise<CoreDevice> {
    const uuid = parseCreateBuffer(written);
    return this.#locked(token => this.#createLocked(type, uuid, token));
  }

  async #createLocked(type: MdevType, uuid: string, token: LockToken): Promise<DeviceImpl> {
    const t = this.#liveType(type);
    const parent = t.parent;
    const modern = this.profile === 'modern';
    const existing = this.#devices.get(uuid);
    // Modern: one global list, checked before capacity. Legacy: only this parent's children.
    if (existing && (modern || existing.parent === parent)) {
      throw new MdevError('EEXIST', `create: ${uuid} already exists`);
    }
    let counted = false;
    if (modern && !parent.ops.getAvailable) {
      if (parent.k.available <= 0) throw new MdevError('EUSERS', `create: ${parent.name} has no instances left`);
      parent.k.available--;
      counted = true;
    }
    if (parent.k.state === 'unregistering') {
      if (counted) parent.k.available++;
      throw new MdevError('ENODEV', `create: ${parent.name} is being unregistered`);
    }
    if (existing) {
      // Legacy: device_register fails on /sys/bus/mdev/devices/<uuid> before any uevent.
      throw new MdevError('EEXIST', `create: ${uuid} already exists under ${existing.parent.name}`);
    }

    const dev = new DeviceImpl(uuid, t, modern, counted);
    this.#devices.set(uuid, dev);
    parent.k.devices.add(dev);
    t.devices.add(dev);
    this.#changed(dev);
    this.#uevent(this.#uevents.mdev('add', dev.devpath));

    let probed = false;
    try {
      const entry = this.#drivers.get(this.#driverNameFor(parent));
      if (entry && entry.state === 'live') {
        await this.#bind(dev, entry, token);
        probed = true;
        if (!modern) this.#addVfio(dev);
      } else if (modern) {
        throw new MdevError('ENODEV', `create: mdev driver ${parent.ops.driver} is not registered`);
      }
      const ops = parent.ops;
      await this.#call(() => ops.create(dev), `${parent.name}: create(${uuid})`, token, () => this.#lateRemove(dev));
    } catch (e) {
      if (dev.k.boundDriver !== undefined) await this.#unbind(dev, token, { callRemove: probed, uevent: false });
      this.#release(dev);
      throw e;
    }
    if (modern && dev.k.boundDriver !== undefined) {
      this.#addVfio(dev);
      this.#uevent(this.#uevents.mdev('bind', dev.devpath, dev.k.boundDriver));
    }
    dev.k.state = 'active';
    dev.k.typeLinked = true;
    // Legacy: created only now, after the vendor's create. Modern: it has been
    // there since device_add, unless a remove during the create deleted it.
    if (!modern) dev.k.hasRemoveFile = true;
    this.#changed(dev);
    return dev;
  }

  /** A create that timed out has succeeded after all: let the plugin release it. */
  #lateRemove(dev: DeviceImpl): void {
    const ops = dev.parent.ops;
    this.#log(`${dev.parent.name}: create(${dev.uuid}) completed after its timeout; calling remove`);
    this.#call(() => ops.remove(dev), `${dev.parent.name}: remove(${dev.uuid}) after late create`)
      .catch(e => this.#log(message(e)));
  }

  // -------------------------------------------------------------------------
  // Remove (remove_store → mdev_device_remove)

  async removeStore(dev: CoreDevice, written: Buffer | string): Promise<void> {
    const buf = writtenBytes(written);
    if (buf.length === 0) return; // sysfs never calls the store for 0 bytes
    const d = this.#ownDevice(dev);
    let value: bigint;
    try {
      value = kstrtoul(buf, 0);
    } catch (e) {
      throw new MdevError('EINVAL', `remove: ${message(e)}`);
    }
    if (value === 0n) return;
    // device_remove_file_self() fails for a writer that raced past open while
    // another remove is under way: success, no effect.
    if (d.k.state === 'removing') return;
    if (d.k.state === 'adding' && this.profile === 'modern') {
      // remove_store has already deleted the file (device_remove_file_self)
      // when mdev_device_remove finds the device not yet active: the device
      // stays, without `remove`, as in the kernel.
      d.k.hasRemoveFile = false;
      this.#changed(d);
      throw new MdevError('EAGAIN', `remove: ${d.uuid} is still being created`);
    }
    await this.#remove(d, false);
  }

  async remove(dev: CoreDevice): Promise<void> {
    return this.#remove(this.#ownDevice(dev), false);
  }

  #checkRemovable(dev: DeviceImpl, forced: boolean): void {
    if (dev.k.state === 'gone') throw new MdevError('ENODEV', `remove: ${dev.uuid} no longer exists`);
    if (dev.k.state !== 'active') throw new MdevError('EAGAIN', `remove: ${dev.uuid} is ${dev.k.state}`);
    if (!forced && dev.parent.k.state === 'unregistering') {
      throw new MdevError('ENODEV', `remove: ${dev.parent.name} is being unregistered`);
    }
  }

  /** `forced`: the parent is being unregistered (no veto, no ENODEV). */
  async #remove(dev: DeviceImpl, forced: boolean): Promise<void> {
    // Checked before queueing too: a remove racing the device's own create or
    // another remove fails at once, as with the kernel's short-held lock.
    this.#checkRemovable(dev, forced);
    const parent = dev.parent;
    const ops = parent.ops;
    const what = `${parent.name}: remove(${dev.uuid})`;
    await this.#locked(async token => {
      this.#checkRemovable(dev, forced);
      dev.k.state = 'removing';
      dev.k.hasRemoveFile = false;
      dev.k.typeLinked = false;
      this.#changed(dev);
      if (this.profile !== 'legacy') return;
      try {
        await this.#call(() => ops.remove(dev), what, token, () => this.#lateLegacyRemove(dev));
      } catch (e) {
        if (forced) {
          this.#log(`${message(e)} (ignored: parent is being unregistered)`);
          return;
        }
        // 4.10 remove_store re-creates the file after a refusal.
        dev.k.state = 'active';
        dev.k.hasRemoveFile = true;
        dev.k.typeLinked = true;
        this.#changed(dev);
        throw new MdevError('EBUSY', `${what} refused: ${message(e)}`);
      }
    });
    await this.#finishRemove(dev, this.profile === 'modern');
  }

  /** The rest of a remove once the device is 'removing': the last close, the vendor's remove (modern), unbind, release. */
  async #finishRemove(dev: DeviceImpl, callVendorRemove: boolean): Promise<void> {
    const ops = dev.parent.ops;
    // vfio_unregister_group_dev(): wait, without the lock, for the last close.
    await dev.waitIdle();
    await this.#locked(async token => {
      if (callVendorRemove) {
        try {
          await this.#call(() => ops.remove(dev), `${dev.parent.name}: remove(${dev.uuid})`, token);
        } catch (e) {
          this.#log(`${message(e)} (ignored: a remove cannot be vetoed)`);
        }
      }
      if (dev.k.boundDriver !== undefined) await this.#unbind(dev, token, { callRemove: true, uevent: true });
      this.#release(dev);
    });
  }

  /**
   * Legacy: a vendor remove that timed out (the writer got EBUSY, `remove` came
   * back) has completed after all. The vendor has let the device go, so the
   * core finishes the removal rather than keep a device its driver no longer has.
   */
  #lateLegacyRemove(dev: DeviceImpl): void {
    this.#log(`${dev.parent.name}: remove(${dev.uuid}) completed after its timeout; removing the device`);
    void this.#locked(async () => {
      if (dev.k.state !== 'active') return false; // removed or being removed meanwhile
      dev.k.state = 'removing';
      dev.k.hasRemoveFile = false;
      dev.k.typeLinked = false;
      this.#changed(dev);
      return true;
    }).then(go => (go ? this.#finishRemove(dev, false) : undefined))
      .catch(e => this.#log(`${dev.parent.name}: finishing the late remove of ${dev.uuid}: ${message(e)}`));
  }

  /** device_del + the final put: the device is gone; capacity comes back. */
  #release(dev: DeviceImpl): void {
    dev.k.state = 'gone';
    dev.k.hasRemoveFile = false;
    dev.k.typeLinked = false;
    this.#devices.delete(dev.uuid);
    dev.parent.k.devices.delete(dev);
    dev.type.devices.delete(dev);
    this.#changed(dev);
    this.#uevent(this.#uevents.mdev('remove', dev.devpath));
    if (dev.k.counted) {
      dev.k.counted = false;
      dev.parent.k.available++;
    }
    dev.notifyGone();
  }

  // -------------------------------------------------------------------------
  // Binding (device_driver_attach / device_release_driver)

  #driverNameFor(parent: ParentImpl): string {
    return this.profile === 'modern' ? parent.ops.driver : VFIO_MDEV_DRIVER;
  }

  /** Attach `dev` to `entry`: IOMMU group, driver link, probe. Undone on a probe failure. */
  async #bind(dev: DeviceImpl, entry: DriverEntry, token: LockToken): Promise<void> {
    const group = this.#groups.allocate();
    dev.k.iommuGroup = group;
    this.#groupDevice.set(group, dev);
    this.#emitChange({ kind: 'group-added', group });
    dev.k.boundDriver = entry.name;
    entry.devices.add(dev);
    this.#changed(dev);
    const drv = entry.drv;
    const probe = drv.probe;
    if (!probe) return;
    try {
      await this.#call(() => probe.call(drv, dev), `${entry.name}: probe(${dev.uuid})`, token, () => {
        const remove = drv.remove;
        if (remove) this.#call(() => remove.call(drv, dev), `${entry.name}: remove(${dev.uuid}) after late probe`).catch(e => this.#log(message(e)));
      });
    } catch (e) {
      // really_probe() failure: no remove, no unbind event.
      dev.k.boundDriver = undefined;
      entry.devices.delete(dev);
      this.#changed(dev);
      this.#freeGroup(dev);
      throw e;
    }
  }

  async #unbind(dev: DeviceImpl, token: LockToken, opts: { callRemove: boolean; uevent: boolean }): Promise<void> {
    const entry = this.#drivers.get(dev.k.boundDriver!);
    // driver_sysfs_remove() comes before the driver's remove.
    dev.k.boundDriver = undefined;
    entry?.devices.delete(dev);
    this.#changed(dev);
    this.#removeVfio(dev);
    const remove = entry?.drv.remove;
    if (opts.callRemove && entry && remove) {
      try {
        await this.#call(() => remove.call(entry.drv, dev), `${entry.name}: remove(${dev.uuid})`, token);
      } catch (e) {
        this.#log(`${message(e)} (ignored: a driver remove cannot fail)`);
      }
    }
    this.#freeGroup(dev);
    if (opts.uevent && this.profile === 'modern') this.#uevent(this.#uevents.mdev('unbind', dev.devpath));
  }

  /**
   * The VFIO objects a bound mdev gets from its driver. Modern:
   * vfio_register_emulated_iommu_dev() makes the group char device
   * (vfio_create_group, `add` SUBSYSTEM=vfio), then vfio-dev/vfio<k>
   * (vfio_device_add, `add` SUBSYSTEM=vfio-dev); both before the mdev's `bind`
   * (mdev-abi.md §1.5, §5.2). Legacy (4.10): vfio_mdev_probe() →
   * vfio_add_group_dev() makes only the group char device, during the bus
   * probe, before the vendor's create; there was no vfio-dev class yet.
   */
  #addVfio(dev: DeviceImpl): void {
    const group = dev.k.iommuGroup;
    if (group === undefined) return;
    if (dev.k.vfioGroupMinor === undefined) {
      const minor = this.#vfioGroupIda.allocate();
      dev.k.vfioGroupMinor = minor;
      this.#changed(dev);
      this.#uevent(this.#uevents.chardev('add', `/devices/virtual/vfio/${group}`, 'vfio',
        VFIO_GROUP_MAJOR, minor, `vfio/${group}`));
    }
    if (dev.k.vfioDevIndex === undefined && this.profile === 'modern') {
      const k = this.#vfioDevIda.allocate();
      dev.k.vfioDevIndex = k;
      this.#changed(dev);
      this.#uevent(this.#uevents.chardev('add', `${dev.devpath}/vfio-dev/vfio${k}`, 'vfio-dev',
        VFIO_DEV_MAJOR, k, `vfio/devices/vfio${k}`));
    }
  }

  /**
   * vfio_unregister_group_dev() in the driver's remove: `remove` for
   * vfio-dev/vfio<k>, then for the group char device; before the mdev's
   * `unbind` (mdev-abi.md §5.3).
   */
  #removeVfio(dev: DeviceImpl): void {
    const k = dev.k.vfioDevIndex;
    if (k !== undefined) {
      dev.k.vfioDevIndex = undefined;
      this.#vfioDevIda.free(k);
      this.#changed(dev);
      this.#uevent(this.#uevents.chardev('remove', `${dev.devpath}/vfio-dev/vfio${k}`, 'vfio-dev',
        VFIO_DEV_MAJOR, k, `vfio/devices/vfio${k}`));
    }
    const minor = dev.k.vfioGroupMinor;
    const group = dev.k.iommuGroup;
    if (minor !== undefined) {
      dev.k.vfioGroupMinor = undefined;
      this.#vfioGroupIda.free(minor);
      this.#changed(dev);
      if (group !== undefined) {
        this.#uevent(this.#uevents.chardev('remove', `/devices/virtual/vfio/${group}`, 'vfio',
          VFIO_GROUP_MAJOR, minor, `vfio/${group}`));
      }
    }
  }

  #freeGroup(dev: DeviceImpl): void {
    const group = dev.k.iommuGroup;
    if (group === undefined) return;
    dev.k.iommuGroup = undefined;
    this.#groupDevice.delete(group);
    this.#groups.free(group);
    this.#changed(dev);
    this.#emitChange({ kind: 'group-removed', group });
  }

  // -------------------------------------------------------------------------
  // Drivers (mdev_register_driver / mdev_unregister_driver)

  async #registerDriver(drv: MdevDriver, owner: Owner | undefined): Promise<void> {
    this.#assertNotUnderLock('registerDriver');
    if (!drv || typeof drv !== 'object' || !isName(drv.name)) {
      throw new MdevError('EINVAL', 'registerDriver: a driver needs a non-empty name');
    }
    if ((drv.probe !== undefined && typeof drv.probe !== 'function') || (drv.remove !== undefined && typeof drv.remove !== 'function')) {
      throw new MdevError('EINVAL', `registerDriver: ${drv.name}: probe and remove must be functions`);
    }
    await this.#locked(async token => {
      if (this.#drivers.has(drv.name)) throw new MdevError('EBUSY', `registerDriver: ${drv.name} is already registered`);
      const entry = new DriverEntry(drv, owner);
      this.#drivers.set(entry.name, entry);
      owner?.drivers.add(entry);
      this.#emitChange({ kind: 'driver-added', driver: entry.name });
      // driver_attach(): bind the devices that have been waiting for it.
      for (const parent of [...this.#parents.values()]) {
        if (parent.k.state !== 'live' || this.#driverNameFor(parent) !== entry.name) continue;
        for (const dev of [...parent.k.devices]) {
          if (dev.k.state !== 'active' || dev.k.boundDriver !== undefined || entry.state !== 'live') continue;
          try {
            await this.#bind(dev, entry, token);
            this.#addVfio(dev);
            if (this.profile === 'modern') this.#uevent(this.#uevents.mdev('bind', dev.devpath, entry.name));
          } catch (e) {
            this.#log(`${message(e)}; ${dev.uuid} stays unbound`);
          }
        }
      }
    });
  }

  async #unregisterDriver(name: string): Promise<void> {
    this.#assertNotUnderLock('unregisterDriver');
    const entry = this.#drivers.get(name);
    if (!entry) throw new MdevError('ENODEV', `unregisterDriver: ${String(name)} is not registered`);
    entry.unregistering ??= this.#doUnregisterDriver(entry);
    return entry.unregistering;
  }

  async #doUnregisterDriver(entry: DriverEntry): Promise<void> {
    await this.#locked(() => { entry.state = 'unregistering'; });
    for (const dev of [...entry.devices]) {
      // The driver's remove waits for the VFIO device's last close, as
      // vfio_unregister_group_dev() does; no new opens meanwhile.
      dev.k.blockOpens++;
      try {
        await dev.waitIdle();
        await this.#locked(async token => {
          if (entry.devices.has(dev)) await this.#unbind(dev, token, { callRemove: true, uevent: true });
        });
      } finally {
        dev.k.blockOpens--;
      }
    }
    await this.#locked(() => {
      this.#drivers.delete(entry.name);
      entry.owner?.drivers.delete(entry);
      this.#emitChange({ kind: 'driver-removed', driver: entry.name });
    });
  }

  // -------------------------------------------------------------------------
  // Parents (mdev_register_device / mdev_unregister_device)

  async #registerDevice(device: ParentDeviceSpec, ops: ParentOps, owner: Owner | undefined): Promise<Parent> {
    this.#assertNotUnderLock('registerDevice');
    validateParent(device, ops, this.profile);
    return this.#locked(async token => {
      const path = normalisePath(device.path);
      const name = path.slice(path.lastIndexOf('/') + 1);
      const clash = this.#parents.get(name);
      if (clash) {
        throw new MdevError('EEXIST', clash.device.path === path
          ? `registerDevice: ${path} is already a parent`
          : `registerDevice: a parent named ${name} exists (${clash.device.path})`);
      }
      if (device.iommuGroup !== undefined) this.#groups.reserve(device.iommuGroup);
      const parent = new ParentImpl(device, ops, owner);
      if (this.profile === 'modern' && !this.#drivers.has(ops.driver)) {
        const entry = new DriverEntry({ name: ops.driver }, owner);
        this.#drivers.set(entry.name, entry);
        owner?.drivers.add(entry);
        this.#emitChange({ kind: 'driver-added', driver: entry.name });
      }
      this.#parents.set(name, parent);
      owner?.parents.add(parent);
      this.#emitChange({ kind: 'parent-added', parent });
      const subsystem = parent.subsystem;
      // A device with neither bus nor class sends no uevents at all.
      if (this.profile === 'modern' && subsystem) {
        this.#uevent(this.#uevents.parentState(parent.devpath, subsystem, 'registered', await this.#parentUeventVars(parent, token)));
      }
      return parent;
    });
  }

  /**
   * dev_uevent's variables for the parent: what its `uevent` file shows (a
   * vendor's file, e.g. pci_uevent's PCI_* and MODALIAS after DRIVER), or else
   * the driver core's own DRIVER line, as the sysfs layer renders it.
   */
  async #parentUeventVars(parent: ParentImpl, token: LockToken): Promise<Array<[string, string]>> {
    const fallback: Array<[string, string]> = parent.device.driver !== undefined ? [['DRIVER', parent.device.driver]] : [];
    const attr = (parent.device.attrs ?? []).filter(g => !g.name).flatMap(g => g.attrs).find(a => a.name === 'uevent');
    const show = attr?.show;
    if (!attr || !show) return fallback;
    try {
      const text = await this.#call(() => show.call(attr, parent), `${parent.name}: uevent show`, token);
      if (typeof text !== 'string') throw new MdevError('EIO', `show returned ${typeof text}, not a string`);
      return parseUeventVars(text);
    } catch (e) {
      this.#log(`${parent.name}: uevent variables: ${message(e)}`);
      return fallback;
    }
  }

  #resolveParent(p: Parent | string): ParentImpl {
    const name = typeof p === 'string' ? p : p?.name;
    const parent = typeof name === 'string' ? this.#parents.get(name) : undefined;
    if (!parent || (typeof p !== 'string' && p !== parent)) {
      throw new MdevError('ENODEV', `unregisterDevice: ${String(name)} is not a registered parent`);
    }
    return parent;
  }

  async #unregisterDevice(p: Parent | string): Promise<void> {
    this.#assertNotUnderLock('unregisterDevice');
    const parent = this.#resolveParent(p);
    parent.k.unregistering ??= this.#doUnregisterDevice(parent);
    return parent.k.unregistering;
  }

  async #doUnregisterDevice(parent: ParentImpl): Promise<void> {
    // Taking the lock waits out a create in progress; later ones get ENODEV.
    const children = await this.#locked(() => {
      parent.k.state = 'unregistering';
      return [...parent.k.devices];
    });
    for (const dev of children) {
      if (dev.k.state === 'active') {
        try {
          await this.#remove(dev, true);
        } catch (e) {
          this.#log(`unregisterDevice ${parent.name}: ${message(e)}`);
        }
      }
      await dev.waitGone(); // one a user was already removing
    }
    await this.#locked(async token => {
      const vars = this.profile === 'modern' && parent.subsystem ? await this.#parentUeventVars(parent, token) : [];
      this.#parents.delete(parent.name);
      if (parent.device.iommuGroup !== undefined) this.#groups.unreserve(parent.device.iommuGroup);
      parent.k.owner?.parents.delete(parent);
      this.#emitChange({ kind: 'parent-removed', parent });
      const subsystem = parent.subsystem;
      if (this.profile === 'modern' && subsystem) {
        this.#uevent(this.#uevents.parentState(parent.devpath, subsystem, 'unregistered', vars));
      }
    });
  }

  // -------------------------------------------------------------------------
  // Page pinning (vfio_pin_pages / vfio_unpin_pages, 2016 form)

  #openDevice(dev: MdevDevice, op: string): DeviceImpl {
    if (!(dev instanceof DeviceImpl) || this.#devices.get(dev.uuid) !== dev) {
      throw new MdevError('EINVAL', `${op}: not a device of this core`);
    }
    if (dev.k.openCount === 0 || !dev.k.container) {
      throw new MdevError('EINVAL', `${op}: ${dev.uuid} is not open with a container attached`);
    }
    return dev;
  }

  #checkPfnList(userPfns: readonly number[], op: string): void {
    if (!Array.isArray(userPfns) || userPfns.length === 0) throw new MdevError('EINVAL', `${op}: no pfns`);
    if (userPfns.length > VFIO_PIN_PAGES_MAX_ENTRIES) {
      throw new MdevError('E2BIG', `${op}: ${userPfns.length} pfns, at most ${VFIO_PIN_PAGES_MAX_ENTRIES}`);
    }
  }

  async #pinPages(dev: MdevDevice, userPfns: readonly number[], prot: number): Promise<number[]> {
    this.#checkPfnList(userPfns, 'pinPages');
    const d = this.#openDevice(dev, 'pinPages');
    const container = d.k.container!;
    if (!container.pinning) throw new MdevError('ENOTTY', 'pinPages: the IOMMU backend cannot pin pages');
    if (!d.parent.ops.notifier) throw new MdevError('EINVAL', `pinPages: ${d.parent.name} has no DMA-unmap notifier`);
    if (!Number.isInteger(prot)) throw new MdevError('EINVAL', 'pinPages: bad prot');
    return container.pin(d, userPfns, prot);
  }

  async #unpinPages(dev: MdevDevice, userPfns: readonly number[]): Promise<number> {
    this.#checkPfnList(userPfns, 'unpinPages');
    const d = this.#openDevice(dev, 'unpinPages');
    const container = d.k.container!;
    if (!container.pinning) throw new MdevError('ENOTTY', 'unpinPages: the IOMMU backend cannot pin pages');
    return container.unpin(d, userPfns);
  }

  async #notifyUnmap(dev: DeviceImpl, event: DmaUnmapEvent): Promise<void> {
    const ops = dev.parent.ops;
    const notifier = ops.notifier;
    if (!notifier) return;
    try {
      await this.#call(() => notifier.call(ops, dev, event), `${dev.parent.name}: notifier(${dev.uuid})`);
    } catch (e) {
      this.#log(message(e));
    }
  }

  // -------------------------------------------------------------------------
  // Plugins (module_init / module_exit)

  async loadPlugin(plugin: VendorPlugin): Promise<void> {
    if (!plugin || typeof plugin !== 'object' || !isName(plugin.name) || typeof plugin.init !== 'function' ||
        (plugin.exit !== undefined && typeof plugin.exit !== 'function')) {
      throw new MdevError('EINVAL', 'loadPlugin: a plugin needs a name and an init function');
    }
    if (this.#plugins.has(plugin.name)) throw new MdevError('EEXIST', `loadPlugin: ${plugin.name} is already loaded`);
    const rec = new PluginRecord(plugin);
    rec.host = new Host(this.#hostBackend, rec);
    this.#plugins.set(rec.name, rec);
    try {
      await callPlugin(() => plugin.init(rec.host), { what: `plugin ${rec.name}: init`, timeoutMs: this.callTimeoutMs });
    } catch (e) {
      rec.state = 'gone'; // a late init can register nothing more
      await this.#releaseLeftovers(rec);
      this.#plugins.delete(rec.name);
      throw toMdevError(e);
    }
    rec.state = 'live';
  }

  async unloadPlugin(name: string): Promise<void> {
    const rec = this.#plugins.get(name);
    if (!rec) throw new MdevError('ENOENT', `unloadPlugin: ${String(name)} is not loaded`);
    if (rec.unloading) return rec.unloading;
    if (rec.state === 'loading') throw new MdevError('EBUSY', `unloadPlugin: ${name} is still loading`);
    // An open VFIO device holds a reference on its vendor module (rmmod: "in use").
    for (const p of rec.parents) {
      for (const d of p.k.devices) {
        if (d.inUse) throw new MdevError('EBUSY', `unloadPlugin: ${name} is in use (${d.uuid} is open)`);
      }
    }
    rec.unloading = this.#doUnload(rec);
    return rec.unloading;
  }

  async #doUnload(rec: PluginRecord): Promise<void> {
    rec.state = 'unloading';
    const exit = rec.plugin.exit;
    if (exit) {
      try {
        await callPlugin(() => exit.call(rec.plugin, rec.host), { what: `plugin ${rec.name}: exit`, timeoutMs: this.callTimeoutMs });
      } catch (e) {
        this.#log(message(e));
      }
    }
    await this.#releaseLeftovers(rec);
    rec.state = 'gone';
    this.#plugins.delete(rec.name);
  }

  async #releaseLeftovers(rec: PluginRecord): Promise<void> {
    for (const p of [...rec.parents].reverse()) {
      if (this.#parents.get(p.name) !== p) continue;
      try { await this.#unregisterDevice(p); } catch (e) { this.#log(`plugin ${rec.name}: ${message(e)}`); }
    }
    for (const d of [...rec.drivers].reverse()) {
      if (this.#drivers.get(d.name) !== d) continue;
      try { await this.#unregisterDriver(d.name); } catch (e) { this.#log(`plugin ${rec.name}: ${message(e)}`); }
    }
  }

  /** Loaded plugin names, in load order. */
  plugins(): readonly string[] { return [...this.#plugins.keys()]; }

  /**
   * The daemon is exiting: close every VFIO handle (so no remove waits
   * forever), unload plugins in reverse order, then drop whatever was
   * registered directly through `core.host`.
   */
  async shutdown(): Promise<void> {
    await this.vfio.closeAll();
    for (const name of [...this.#plugins.keys()].reverse()) {
      try { await this.unloadPlugin(name); } catch (e) { this.#log(`shutdown: ${message(e)}`); }
    }
    for (const p of [...this.#parents.values()].reverse()) {
      try { await this.#unregisterDevice(p); } catch (e) { this.#log(`shutdown: ${message(e)}`); }
    }
    for (const d of [...this.#drivers.values()].reverse()) {
      if (d.coreOwned) continue;
      try { await this.#unregisterDriver(d.name); } catch (e) { this.#log(`shutdown: ${message(e)}`); }
    }
  }

  // -------------------------------------------------------------------------
  // Plumbing

  async #locked<T>(fn: (token: LockToken) => Awaitable<T>): Promise<T> {
    const release = await this.#lock.acquire();
    const token: LockToken = { held: true };
    try {
      return await fn(token);
    } finally {
      token.held = false;
      release();
    }
  }

  #call<T>(fn: () => Awaitable<T>, what: string, token?: LockToken, onLate?: (value: T) => void): Promise<T> {
    return callPlugin(fn, {
      what, timeoutMs: this.callTimeoutMs, onLate,
      run: token ? f => this.#lockScope.run(token, f) : undefined,
    });
  }

  #assertNotUnderLock(op: string): void {
    if (this.#lockScope.getStore()?.held) {
      throw new MdevError('EDEADLK', `${op}: called from a plugin callback that runs under mdev_list_lock`);
    }
  }

  #liveType(type: MdevType): TypeImpl {
    if (!(type instanceof TypeImpl) || this.#parents.get(type.parent.name) !== type.parent) {
      throw new MdevError('ENODEV', `create: ${String(type?.id)} is not a type of a registered parent`);
    }
    return type;
  }

  #ownDevice(dev: CoreDevice): DeviceImpl {
    if (!(dev instanceof DeviceImpl) || this.#devices.get(dev.uuid) !== dev) {
      throw new MdevError('ENODEV', `${String(dev?.uuid)} no longer exists`);
    }
    return dev;
  }

  #changed(dev: DeviceImpl): void {
    this.#emitChange({ kind: 'device-changed', device: dev });
  }

  // Listener exceptions must not tear a state transition in half.
  #emitChange(change: CoreChange): void {
    try { this.emit('change', change); } catch (e) { this.#log(`a 'change' listener threw: ${message(e)}`); }
  }

  #uevent(ev: Uevent): void {
    try { this.emit('uevent', ev); } catch (e) { this.#log(`a 'uevent' listener threw: ${message(e)}`); }
  }

  #log(msg: string): void {
    try { this.emit('log', msg); } catch { /* nowhere left to report it */ }
  }
}
