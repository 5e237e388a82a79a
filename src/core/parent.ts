/**
 * Parents (struct mdev_parent) and their types, with the registration-time
 * validation of a vendor's ParentOps (mdev_register_device / mdev_register_parent).
 */
import type { DeviceApi, MdevType, MdevTypeSpec, ParentDeviceSpec, ParentOps } from './api.js';
import type { CoreParent } from './model.js';
import type { DeviceImpl } from './device.js';
import type { DriverEntry } from './driver.js';
import { MdevError } from './errno.js';

export const DEVICE_APIS: ReadonlySet<string> = new Set<DeviceApi>(['vfio-pci', 'vfio-platform', 'vfio-amba', 'vfio-ccw', 'vfio-ap']);

/** Who registered something through the host (a loaded plugin), for unload. */
export interface Owner {
  readonly name: string;
  readonly parents: Set<ParentImpl>;
  readonly drivers: Set<DriverEntry>;
}

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
      state: 'live', devices: new Set(), available: ops.getAvailable ? 0 : (ops.maxInstances ?? 0),
      unregistering: undefined, owner,
    };
  }

  get state(): 'live' | 'unregistering' { return this.k.state; }

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

export function normalisePath(path: string): string {
  return path.replace(/^\/+|\/+$/g, '');
}

function invalid(msg: string): never {
  throw new MdevError('EINVAL', `registerDevice: ${msg}`);
}

const isFn = (f: unknown): boolean => typeof f === 'function';
const isName = (s: unknown): s is string => typeof s === 'string' && s.length > 0 && !s.includes('/') && s !== '.' && s !== '..';

/** mdev_register_device's checks: EINVAL for missing mandatory ops, EEXIST for clashing type ids. */
export function validateParent(device: ParentDeviceSpec, ops: ParentOps, profile: 'modern' | 'legacy'): void {
  if (!device || typeof device !== 'object') invalid('no parent device');
  if (typeof device.path !== 'string' || normalisePath(device.path) === '' ||
      normalisePath(device.path).split('/').some(seg => !isName(seg))) invalid(`bad path ${JSON.stringify(device.path)}`);
  if (!isName(device.typePrefix)) invalid('typePrefix must be a non-empty name');
  if (device.iommuGroup !== undefined && !(Number.isSafeInteger(device.iommuGroup) && device.iommuGroup >= 0)) {
    invalid('iommuGroup must be a non-negative integer');
  }
  if (!ops || typeof ops !== 'object') invalid('no parent ops');
  if (!isFn(ops.create)) invalid('ops.create is mandatory');
  if (!isFn(ops.remove)) invalid('ops.remove is mandatory');
  if (profile === 'modern' && !isName(ops.driver)) invalid('ops.driver must name the mdev bus driver');
  if (!DEVICE_APIS.has(ops.deviceApi)) invalid(`unknown deviceApi ${JSON.stringify(ops.deviceApi)}`);
  if (ops.maxInstances !== undefined && !(Number.isSafeInteger(ops.maxInstances) && ops.maxInstances >= 0)) {
    invalid('maxInstances must be a non-negative integer');
  }
  for (const k of ['getAvailable', 'open', 'close', 'read', 'write', 'ioctl', 'mmap', 'notifier'] as const) {
    if (ops[k] !== undefined && !isFn(ops[k])) invalid(`ops.${k} must be a function`);
  }
  if (!Array.isArray(ops.types) || ops.types.length === 0) invalid('at least one type is mandatory');
  const seen = new Set<string>();
  for (const t of ops.types) {
    if (!t || !isName(t.id)) invalid('every type needs a non-empty id');
    if (t.deviceApi !== undefined && !DEVICE_APIS.has(t.deviceApi)) invalid(`type ${t.id}: unknown deviceApi`);
    if (seen.has(t.id)) throw new MdevError('EEXIST', `registerDevice: duplicate type id ${JSON.stringify(t.id)}`);
    seen.add(t.id);
  }
}
