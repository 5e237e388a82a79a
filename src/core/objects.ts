/**
 * The core's object records, together as include/linux/mdev.h holds them:
 * a parent (struct mdev_parent) with its types (struct mdev_type), a mediated
 * device (struct mdev_device) and a bus driver (struct mdev_driver). Each
 * record shows plugins and presenters its public fields; the bookkeeping
 * that only the core mutates lives in `k`.
 */
import type { DeviceApi, MdevDriver, MdevType, MdevTypeSpec, ParentDeviceSpec, ParentOps, PciDevice } from './api.js';
import type { CoreDevice, CoreParent, DeviceState } from './model.js';
import { Mutex } from './list-lock.js';

/** Who registered something through the host (a loaded plugin), for unload. */
export interface Owner {
  readonly name: string;
  readonly parents: Set<ParentImpl>;
  readonly drivers: Set<DriverEntry>;
  readonly pciDevices: Set<PciDevice>;
}

/**
 * The Type1 container a device's group is attached to while open, as the
 * device sees it (type1.ts implements it; declared here so records do not
 * depend on the container).
 */
export interface AttachedContainer {
  readonly pinning: boolean;
  pin(dev: DeviceImpl, userPfns: readonly number[], prot: number): number[];
  unpin(dev: DeviceImpl, userPfns: readonly number[]): number;
  /** Drop every pin the device holds; returns how many were left. */
  releaseDevice(dev: DeviceImpl): number;
}

export function normalisePath(path: string): string {
  return path.replace(/^\/+|\/+$/g, '');
}

// ---------------------------------------------------------------------------
// Parents and types

export class TypeImpl implements MdevType {
  readonly id: string;
  readonly name: string;
  readonly deviceApi: DeviceApi;
  readonly parent: ParentImpl;
  readonly spec: Readonly<MdevTypeSpec>;
  /** The type's devices/ directory. */
  readonly devices = new Set<DeviceImpl>();

  constructor(parent: ParentImpl, spec: MdevTypeSpec, fallbackApi: DeviceApi) {
    this.parent = parent;
    this.spec = Object.freeze({ ...spec });
    this.id = `${parent.device.typePrefix}-${spec.id}`;
    this.name = spec.name ?? spec.id;
    this.deviceApi = spec.deviceApi ?? fallbackApi;
  }
}

export interface ParentKernelState {
  state: 'live' | 'unregistering';
  readonly devices: Set<DeviceImpl>;
  /** The modern core counter (mdev_parent.available_instances). */
  available: number;
  /** Set once unregistration has started; every caller awaits the same run. */
  unregistering: Promise<void> | undefined;
  readonly owner: Owner | undefined;
}

export class ParentImpl implements CoreParent {
  readonly name: string;
  readonly device: Readonly<ParentDeviceSpec>;
  readonly ops: ParentOps;
  readonly types: readonly TypeImpl[];
  readonly devpath: string;
  drvdata: unknown = undefined;
  readonly k: ParentKernelState;

  constructor(device: ParentDeviceSpec, ops: ParentOps, owner: Owner | undefined) {
    const path = normalisePath(device.path);
    this.device = Object.freeze({ ...device, path });
    this.ops = ops;
    this.devpath = `/${path}`;
    this.name = path.slice(path.lastIndexOf('/') + 1);
    this.types = Object.freeze(ops.types.map(t => new TypeImpl(this, t, ops.deviceApi)));
    this.k = {
      state: 'live',
      devices: new Set(),
      available: ops.getAvailable ? 0 : (ops.maxInstances ?? 0),
      unregistering: undefined,
      owner,
    };
  }

  get state(): 'live' | 'unregistering' {
    return this.k.state;
  }

  /** SUBSYSTEM of the parent's own uevents; undefined: the kernel sends none (no bus, no class). */
  get subsystem(): string | undefined {
    const s = this.device.subsystem;
    if (!s) return undefined;
    return 'class' in s ? s.class : s.bus;
  }

  toJSON(): object {
    return { name: this.name, path: this.device.path, state: this.state, types: this.types.map(t => t.id) };
  }
}

// ---------------------------------------------------------------------------
// Mediated devices

export interface DeviceKernelState {
  state: DeviceState;
  boundDriver: string | undefined;
  /** __device_release_driver has begun; its remove waits for the last close (model.ts). */
  releasing: boolean;
  iommuGroup: number | undefined;
  typeLinked: boolean;
  hasRemoveFile: boolean;
  openCount: number;
  /** Opens and closes in flight: a remove waits for them too. */
  pending: number;
  /** >0 while a driver unbind waits for the last close: no new opens. */
  blockOpens: number;
  /** The Type1 container the device's group is attached to while open. */
  container: AttachedContainer | undefined;
  /** Took one from the parent's core counter (restored at release). */
  counted: boolean;
  /** The VFIO group char device's minor while it exists (model.ts). */
  vfioGroupMinor: number | undefined;
  /** Modern: k of vfio-dev/vfio<k> while it exists (model.ts). */
  vfioDevIndex: number | undefined;
  /** The probe completed and the VFIO objects' `add` uevents were sent (so their removal sends `remove`s): CoreDevice.probed. */
  vfioAnnounced: boolean;
  /** Modern: the vendor's remove already ran, for an unbind through sysfs; the device's removal skips it. */
  vendorDetached: boolean;
}

export class DeviceImpl implements CoreDevice {
  readonly uuid: string;
  readonly type: TypeImpl;
  readonly parent: ParentImpl;
  readonly devpath: string;
  drvdata: unknown = undefined;
  readonly k: DeviceKernelState;
  #openLock: Mutex | undefined;
  #idleWaiters: Array<() => void> = [];
  #goneWaiters: Array<() => void> = [];

  constructor(uuid: string, type: TypeImpl, hasRemoveFile: boolean, counted: boolean) {
    this.uuid = uuid;
    this.type = type;
    this.parent = type.parent;
    this.devpath = `${type.parent.devpath}/${uuid}`;
    this.k = {
      state: 'adding',
      boundDriver: undefined,
      releasing: false,
      iommuGroup: undefined,
      typeLinked: false,
      hasRemoveFile,
      openCount: 0,
      pending: 0,
      blockOpens: 0,
      container: undefined,
      counted,
      vfioGroupMinor: undefined,
      vfioDevIndex: undefined,
      vfioAnnounced: false,
      vendorDetached: false,
    };
  }

  get state(): DeviceState {
    return this.k.state;
  }
  get boundDriver(): string | undefined {
    return this.k.boundDriver;
  }
  get releasing(): boolean {
    return this.k.releasing;
  }
  get probed(): boolean {
    return this.k.vfioAnnounced;
  }
  get iommuGroup(): number | undefined {
    return this.k.iommuGroup;
  }
  get typeLinked(): boolean {
    return this.k.typeLinked;
  }
  get hasRemoveFile(): boolean {
    return this.k.hasRemoveFile;
  }
  get openCount(): number {
    return this.k.openCount;
  }
  get vfioGroupMinor(): number | undefined {
    return this.k.vfioGroupMinor;
  }
  get vfioDevIndex(): number | undefined {
    return this.k.vfioDevIndex;
  }

  /** Serialises this device's VFIO open/close transitions (the vfio_device dev_set lock). */
  get openLock(): Mutex {
    return (this.#openLock ??= new Mutex());
  }

  get inUse(): boolean {
    return this.k.openCount + this.k.pending > 0;
  }

  /** Resolves once no handle is open and no open/close is in flight. */
  waitIdle(): Promise<void> {
    if (!this.inUse) return Promise.resolve();
    return new Promise(resolve => this.#idleWaiters.push(resolve));
  }

  /** Called by the VFIO side whenever openCount/pending drop. */
  notifyIfIdle(): void {
    if (this.inUse || this.#idleWaiters.length === 0) return;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const w of waiters) w();
  }

  waitGone(): Promise<void> {
    if (this.k.state === 'gone') return Promise.resolve();
    return new Promise(resolve => this.#goneWaiters.push(resolve));
  }

  notifyGone(): void {
    const waiters = this.#goneWaiters;
    this.#goneWaiters = [];
    for (const w of waiters) w();
  }

  toJSON(): object {
    return {
      uuid: this.uuid,
      type: this.type.id,
      parent: this.parent.name,
      state: this.state,
      boundDriver: this.boundDriver,
      iommuGroup: this.iommuGroup,
      openCount: this.openCount,
    };
  }
}

// ---------------------------------------------------------------------------
// Bus drivers

export class DriverEntry {
  readonly name: string;
  readonly drv: MdevDriver;
  state: 'live' | 'unregistering' = 'live';
  readonly devices = new Set<DeviceImpl>();
  /** Set once unregistration has started; every caller awaits the same run. */
  unregistering: Promise<void> | undefined;
  /** Registered by the core itself ('vfio_mdev' in the legacy profile). */
  readonly coreOwned: boolean;
  readonly owner: Owner | undefined;

  constructor(drv: MdevDriver, owner: Owner | undefined, coreOwned = false) {
    this.name = drv.name;
    this.drv = drv;
    this.owner = owner;
    this.coreOwned = coreOwned;
  }
}
