/**
 * MdevCore: an in-process model of drivers/vfio/mdev with no file system in
 * it. The sysfs layer renders its state and turns create/remove writes into
 * typed calls; plugins register through `host`; tests and QEMU-like users
 * drive `vfio`.
 *
 * This class only wires the parts together and answers lookups; each job is
 * a file of its own over the shared CoreContext (context.ts): lifecycle.ts
 * (create/remove), binding.ts (bus binding and the VFIO objects), parents.ts,
 * drivers.ts, pinning.ts, plugins.ts.
 */
import { EventEmitter } from 'node:events';
import type { MdevHost, MdevType, Parent, VendorPlugin } from './api.js';
import { CoreContext, VFIO_MDEV_DRIVER } from './context.js';
import { registerDriver, unregisterDriver } from './drivers.js';
import { bindByName, probeByName, unbindByName } from './explicit-binding.js';
import { availableInstances, setAvailable } from './capacity.js';
import { controlState, plugParent, unplugParent, type ControlState } from './control.js';
import { MdevError, errorMessage } from './errno.js';
import { faultTarget } from './fault-target.js';
import type { FaultTable } from './faults.js';
import { Host, type HostBackend } from './host.js';
import { createDevice, removeDevice, removeSelf } from './lifecycle.js';
import type { CoreDevice, CoreEvents, CoreOptions, CoreParent, CorePciDevice, MdevCoreApi } from './model.js';
import { ParentImpl, TypeImpl } from './objects.js';
import { addPciDevice, removePciDevice, setNumVfs, setVfAutoprobe } from './pci-devices.js';
import { PciDeviceImpl } from './pci-objects.js';
import { registerParent, unregisterParent } from './parents.js';
import { notifyUnmap, pinPages, unpinPages } from './pinning.js';
import { DEFAULT_CALL_TIMEOUT_MS } from './plugin-call.js';
import { PluginLoader } from './plugins.js';
import { canonicalUuid, deviceName } from './uuid.js';
import { VfioUserImpl } from './vfio-user.js';

export { VFIO_MDEV_DRIVER };

export class MdevCore extends EventEmitter<CoreEvents> implements MdevCoreApi {
  readonly profile;
  readonly callTimeoutMs: number;
  readonly host: MdevHost;
  readonly vfio: VfioUserImpl;

  readonly #ctx: CoreContext;
  readonly #plugins: PluginLoader;

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
    const ctx = (this.#ctx = new CoreContext(profile, timeout, this));
    // The host's numbers stay reserved for the core's lifetime (an ida's ids in use elsewhere).
    for (const id of opts.hostIds?.iommuGroups ?? []) ctx.groups.reserve(id);
    for (const id of opts.hostIds?.vfioGroupMinors ?? []) ctx.vfioGroupIda.reserve(id);
    for (const id of opts.hostIds?.vfioDevices ?? []) ctx.vfioDevIda.reserve(id);
    const backend: HostBackend = {
      profile,
      registerDriver: (drv, owner) => registerDriver(ctx, drv, owner),
      unregisterDriver: name => unregisterDriver(ctx, name),
      registerDevice: (device, ops, owner) => registerParent(ctx, device, ops, owner),
      unregisterDevice: parent => unregisterParent(ctx, parent),
      addPciDevice: (device, owner) => addPciDevice(ctx, device, owner),
      removePciDevice: device => removePciDevice(ctx, device),
      pinPages: (dev, pfns, prot) => pinPages(ctx, dev, pfns, prot),
      unpinPages: (dev, pfns) => unpinPages(ctx, dev, pfns),
      log: msg => ctx.log(msg),
    };
    this.host = new Host(backend);
    this.#plugins = new PluginLoader(ctx, backend);
    this.vfio = new VfioUserImpl({
      findDevice: uuid => ctx.devices.get(canonicalUuid(uuid)),
      call: (fn, what, onLate) => ctx.call(fn, what, undefined, onLate),
      changed: (dev, step) => ctx.publish(dev, step),
      log: msg => ctx.log(msg),
      notifyUnmap: (dev, ev) => notifyUnmap(ctx, dev, ev),
      fault: dev => ctx.faults.hit('open', faultTarget(dev)),
    });
  }

  // -------------------------------------------------------------------------
  // Lookups (all O(1) or iterators over per-object sets)

  drivers(): readonly string[] {
    return [...this.#ctx.drivers.keys()];
  }
  parents(): Iterable<CoreParent> {
    return this.#ctx.parents.values();
  }
  parent(name: string): CoreParent | undefined {
    return this.#ctx.parents.get(name);
  }
  device(uuid: string): CoreDevice | undefined {
    return typeof uuid === 'string' ? this.#ctx.devices.get(canonicalUuid(uuid)) : undefined;
  }
  devices(): Iterable<CoreDevice> {
    return this.#ctx.devices.values();
  }
  devicesOfType(type: MdevType): Iterable<CoreDevice> {
    return type instanceof TypeImpl ? type.devices.values() : [];
  }
  devicesOfParent(parent: Parent): Iterable<CoreDevice> {
    return parent instanceof ParentImpl ? parent.k.devices.values() : [];
  }
  pciDevices(): Iterable<CorePciDevice> {
    return this.#ctx.pciDevices.values();
  }
  pciDevice(name: string): CorePciDevice | undefined {
    return this.#ctx.pciDevices.get(name);
  }
  setNumVfs(pf: CorePciDevice, n: number): Promise<void> {
    return setNumVfs(this.#ctx, this.#ownPci(pf), n);
  }
  setVfAutoprobe(pf: CorePciDevice, on: boolean): void {
    setVfAutoprobe(this.#ctx, this.#ownPci(pf), on);
  }
  #ownPci(dev: CorePciDevice): PciDeviceImpl {
    if (!(dev instanceof PciDeviceImpl) || this.#ctx.pciDevices.get(dev.name) !== dev) {
      throw new MdevError('ENODEV', `${String(dev?.name)} no longer exists`);
    }
    return dev;
  }
  iommuGroups(): Iterable<number> {
    return this.#ctx.groupDevice.keys();
  }
  groupDevices(group: number): Iterable<CoreDevice> {
    const d = this.#ctx.groupDevice.get(group);
    return d ? [d] : [];
  }

  /** available_instances: the vendor's getAvailable, else the core's own count, less another tenant's share (control.ts). */
  availableInstances(type: MdevType): number {
    const ctx = this.#ctx;
    if (!(type instanceof TypeImpl) || ctx.parents.get(type.parent.name) !== type.parent) return 0;
    return availableInstances(ctx, type);
  }

  // -------------------------------------------------------------------------
  // The control plane (docs/control.md): unplug/plug, faults, capacity, state

  /** Injected faults: `core.faults.add({ op: 'create', errno: 'EIO', count: 1 })`. */
  get faults(): FaultTable {
    return this.#ctx.faults;
  }
  /** The vendor unregisters the parent (devices removed first, then MDEV_STATE=unregistered). */
  unplug(parent: string): Promise<void> {
    return unplugParent(this.#ctx, parent);
  }
  /** The vendor registers an unplugged parent again. */
  plug(parent: string): Promise<void> {
    return plugParent(this.#ctx, parent);
  }
  /** Make `type` show `n` available instances, as if another tenant held the rest. */
  setAvailable(type: MdevType, n: number): void {
    setAvailable(this.#ctx, this.#ctx.liveType(type), n);
  }
  /** Parents (plugged or not), types, devices, IOMMU groups and pending faults. */
  controlState(): ControlState {
    return controlState(this.#ctx);
  }

  // -------------------------------------------------------------------------
  // Create and remove

  async create(type: MdevType, uuid: string): Promise<CoreDevice> {
    return createDevice(this.#ctx, type, deviceName(uuid));
  }

  async removeSelf(dev: CoreDevice): Promise<void> {
    return removeSelf(this.#ctx, this.#ctx.ownDevice(dev));
  }

  async remove(dev: CoreDevice): Promise<void> {
    return removeDevice(this.#ctx, this.#ctx.ownDevice(dev), false);
  }

  // -------------------------------------------------------------------------
  // Binding asked for by name (bind, unbind, drivers_probe, drivers_autoprobe)

  get autoprobe(): boolean {
    return this.#ctx.autoprobe;
  }

  set autoprobe(on: boolean) {
    this.#ctx.autoprobe = on;
  }

  async bindDevice(dev: CoreDevice, driver: string): Promise<void> {
    return bindByName(this.#ctx, this.#ctx.ownDevice(dev), driver);
  }

  async unbindDevice(dev: CoreDevice, driver: string): Promise<void> {
    return unbindByName(this.#ctx, this.#ctx.ownDevice(dev), driver);
  }

  async probeDevice(dev: CoreDevice): Promise<void> {
    return probeByName(this.#ctx, this.#ctx.ownDevice(dev));
  }

  sendUevent(fields: Readonly<Record<string, string>>): void {
    this.#ctx.uevent(this.#ctx.uevents.synthetic(fields));
  }

  // -------------------------------------------------------------------------
  // Plugins

  loadPlugin(plugin: VendorPlugin): Promise<void> {
    return this.#plugins.load(plugin);
  }
  unloadPlugin(name: string): Promise<void> {
    return this.#plugins.unload(name);
  }
  /** Loaded plugin names, in load order. */
  plugins(): readonly string[] {
    return this.#plugins.names();
  }

  /**
   * The daemon is exiting: close every VFIO handle (so no remove waits
   * forever), unload plugins in reverse order, then drop whatever was
   * registered directly through `core.host`.
   */
  async shutdown(): Promise<void> {
    const ctx = this.#ctx;
    await this.vfio.closeAll();
    for (const name of [...this.#plugins.names()].reverse()) {
      try {
        await this.unloadPlugin(name);
      } catch (e) {
        ctx.log(`shutdown: ${errorMessage(e)}`);
      }
    }
    for (const p of [...ctx.parents.values()].reverse()) {
      try {
        await unregisterParent(ctx, p);
      } catch (e) {
        ctx.log(`shutdown: ${errorMessage(e)}`);
      }
    }
    for (const d of [...ctx.drivers.values()].reverse()) {
      if (d.coreOwned) continue;
      try {
        await unregisterDriver(ctx, d.name);
      } catch (e) {
        ctx.log(`shutdown: ${errorMessage(e)}`);
      }
    }
  }
}
