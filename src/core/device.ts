/**
 * A mediated device (struct mdev_device): what plugins and the sysfs layer see,
 * plus the core-only bookkeeping in `k`, which only the core mutates.
 */
import type { CoreDevice, DeviceState } from './model.js';
import type { ParentImpl, TypeImpl } from './parent.js';
import { Mutex } from './list-lock.js';
import type { Type1ContainerImpl } from './type1.js';

export interface DeviceKernelState {
  state: DeviceState;
  boundDriver: string | undefined;
  iommuGroup: number | undefined;
  typeLinked: boolean;
  hasRemoveFile: boolean;
  openCount: number;
  /** Opens and closes in flight: a remove waits for them too. */
  pending: number;
  /** >0 while a driver unbind waits for the last close: no new opens. */
  blockOpens: number;
  /** The Type1 container the device's group is attached to while open. */
  container: Type1ContainerImpl | undefined;
  /** Took one from the parent's core counter (restored at release). */
  counted: boolean;
  /** Modern: the VFIO group char device's minor while it exists (model.ts). */
  vfioGroupMinor: number | undefined;
  /** Modern: k of vfio-dev/vfio<k> while it exists (model.ts). */
  vfioDevIndex: number | undefined;
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
      state: 'adding', boundDriver: undefined, iommuGroup: undefined, typeLinked: false,
      hasRemoveFile, openCount: 0, pending: 0, blockOpens: 0, container: undefined, counted,
      vfioGroupMinor: undefined, vfioDevIndex: undefined,
    };
  }

  get state(): DeviceState { return this.k.state; }
  get boundDriver(): string | undefined { return this.k.boundDriver; }
  get iommuGroup(): number | undefined { return this.k.iommuGroup; }
  get typeLinked(): boolean { return this.k.typeLinked; }
  get hasRemoveFile(): boolean { return this.k.hasRemoveFile; }
  get openCount(): number { return this.k.openCount; }
  get vfioGroupMinor(): number | undefined { return this.k.vfioGroupMinor; }
  get vfioDevIndex(): number | undefined { return this.k.vfioDevIndex; }

  /** Serialises this device's VFIO open/close transitions (the vfio_device dev_set lock). */
  get openLock(): Mutex { return (this.#openLock ??= new Mutex()); }

  get inUse(): boolean { return this.k.openCount + this.k.pending > 0; }

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
    return { uuid: this.uuid, type: this.type.id, parent: this.parent.name, state: this.state,
      boundDriver: this.boundDriver, iommuGroup: this.iommuGroup, openCount: this.openCount };
  }
}
