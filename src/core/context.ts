/**
 * The state every part of the core shares: the registries of parents,
 * devices and drivers, the id allocators, the one lock (mdev_list_lock), the
 * bounded call into plugin code, and the emitters of changes, uevents and
 * log lines. The other files of the core are functions over this context,
 * one job each, as drivers/vfio/mdev/ splits its own.
 *
 * Locking: one FIFO async mutex serialises every state transition, including
 * the plugin calls inside it (each bounded by callTimeoutMs), so plugins never
 * see two creates/removes at once. Waiting for a VFIO device's last close
 * never holds it. A plugin callback that calls back into a registration
 * function while the core holds the lock gets EDEADLK at once instead of a
 * timeout.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { EventEmitter } from 'node:events';
import type { Awaitable, MdevType, Profile, Uevent } from './api.js';
import type { CoreChange, CoreDevice, CoreEvents, DeviceStep } from './model.js';
import { MdevError, errorMessage } from './errno.js';
import { IommuGroupAllocator } from './iommu-groups.js';
import { FaultTable } from './faults.js';
import { Mutex } from './list-lock.js';
import { DeviceImpl, DriverEntry, TypeImpl, type ParentImpl } from './objects.js';
import type { PciDeviceImpl } from './pci-objects.js';
import { callPlugin } from './plugin-call.js';
import { UeventSource } from './uevents.js';

/** The generic bus driver of the 2016 design, registered by the core itself. */
export const VFIO_MDEV_DRIVER = 'vfio_mdev';

/** Held while a critical section runs; plugin callbacks inside it carry it. */
export interface LockToken {
  held: boolean;
}

export class CoreContext {
  readonly #lock = new Mutex();
  /** Marks plugin callbacks the core runs while holding the lock. */
  readonly #lockScope = new AsyncLocalStorage<LockToken>();

  readonly uevents = new UeventSource();
  /** IOMMU group ids: lowest free first, parents' own groups reserved. */
  readonly groups = new IommuGroupAllocator();
  /** vfio.group_ida (group char device minors) and vfio.device_ida (vfio<k>): lowest free first. */
  readonly vfioGroupIda = new IommuGroupAllocator();
  readonly vfioDevIda = new IommuGroupAllocator();

  readonly drivers = new Map<string, DriverEntry>();
  readonly parents = new Map<string, ParentImpl>();
  readonly devices = new Map<string, DeviceImpl>();
  /** PCI functions by address (pci-devices.ts). */
  readonly pciDevices = new Map<string, PciDeviceImpl>();
  /** A mediated device's IOMMU group holds exactly that device. */
  readonly groupDevice = new Map<number, DeviceImpl>();
  /**
   * The bus's drivers_autoprobe. 4.10 probes a new device only while it is
   * set (bus_probe_device); today's mdev_device_create attaches its driver
   * explicitly, whatever it says.
   */
  autoprobe = true;

  /** The control plane (control.ts, faults.ts): injected faults, capacity another tenant holds, unplugged parents. */
  readonly faults = new FaultTable();
  readonly taken = new Map<TypeImpl, number>();
  readonly unplugged = new Map<string, ParentImpl>();

  constructor(
    readonly profile: Profile,
    readonly callTimeoutMs: number,
    private readonly events: EventEmitter<CoreEvents>,
  ) {
    if (profile === 'legacy') {
      this.drivers.set(VFIO_MDEV_DRIVER, new DriverEntry({ name: VFIO_MDEV_DRIVER }, undefined, true));
    }
  }

  get modern(): boolean {
    return this.profile === 'modern';
  }

  // -------------------------------------------------------------------------
  // The lock and bounded plugin calls

  async locked<T>(fn: (token: LockToken) => Awaitable<T>): Promise<T> {
    const release = await this.#lock.acquire();
    const token: LockToken = { held: true };
    try {
      return await fn(token);
    } finally {
      token.held = false;
      release();
    }
  }

  /** Call plugin code, bounded; `token` marks it as running under the lock. */
  call<T>(fn: () => Awaitable<T>, what: string, token?: LockToken, onLate?: (value: T) => void): Promise<T> {
    return callPlugin(fn, {
      what,
      timeoutMs: this.callTimeoutMs,
      onLate,
      run: token ? f => this.#lockScope.run(token, f) : undefined,
    });
  }

  /** Registration functions refuse to run from a callback that holds the lock. */
  assertNotUnderLock(op: string): void {
    if (this.#lockScope.getStore()?.held) {
      throw new MdevError('EDEADLK', `${op}: called from a plugin callback that runs under mdev_list_lock`);
    }
  }

  // -------------------------------------------------------------------------
  // Lookups that check a record still belongs to this core

  liveType(type: MdevType): TypeImpl {
    if (!(type instanceof TypeImpl) || this.parents.get(type.parent.name) !== type.parent) {
      throw new MdevError('ENODEV', `create: ${String(type?.id)} is not a type of a registered parent`);
    }
    return type;
  }

  ownDevice(dev: CoreDevice): DeviceImpl {
    if (!(dev instanceof DeviceImpl) || this.devices.get(dev.uuid) !== dev) {
      throw new MdevError('ENODEV', `${String(dev?.uuid)} no longer exists`);
    }
    return dev;
  }

  /** The bus driver a parent's devices bind to: its own (modern) or vfio_mdev (legacy). */
  driverNameFor(parent: ParentImpl): string {
    return this.modern ? parent.ops.driver : VFIO_MDEV_DRIVER;
  }

  // -------------------------------------------------------------------------
  // What the core tells its listeners. A listener that throws must not tear
  // a state transition in half.

  /** Announce a device at one of its kernel steps (model.ts DeviceStep). */
  publish(device: DeviceImpl, step: DeviceStep): void {
    this.emitChange({ kind: 'device', step, device });
  }

  emitChange(change: CoreChange): void {
    try {
      this.events.emit('change', change);
    } catch (e) {
      this.log(`a 'change' listener threw: ${errorMessage(e)}`);
    }
  }

  uevent(ev: Uevent): void {
    try {
      this.events.emit('uevent', ev);
    } catch (e) {
      this.log(`a 'uevent' listener threw: ${errorMessage(e)}`);
    }
  }

  log(msg: string): void {
    try {
      this.events.emit('log', msg);
    } catch {
      /* nowhere left to report it */
    }
  }
}
