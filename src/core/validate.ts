/**
 * mdev_register_parent's checks on what a vendor registers: EINVAL for a
 * missing mandatory op or a bad name, EEXIST for clashing type ids.
 */
import { DEVICE_APIS, type ParentDeviceSpec, type ParentOps, type Profile } from './api.js';
import { MdevError } from './errno.js';
import { isEntryName } from './names.js';
import { normalisePath } from './objects.js';

const KNOWN_APIS: ReadonlySet<string> = new Set(DEVICE_APIS);

function invalid(msg: string): never {
  throw new MdevError('EINVAL', `registerDevice: ${msg}`);
}

const isFn = (f: unknown): boolean => typeof f === 'function';

export function validateParent(device: ParentDeviceSpec, ops: ParentOps, profile: Profile): void {
  if (!device || typeof device !== 'object') invalid('no parent device');
  if (
    typeof device.path !== 'string' ||
    normalisePath(device.path) === '' ||
    normalisePath(device.path)
      .split('/')
      .some(seg => !isEntryName(seg))
  )
    invalid(`bad path ${JSON.stringify(device.path)}`);
  if (!isEntryName(device.typePrefix)) invalid('typePrefix must be a non-empty name');
  if (device.iommuGroup !== undefined && !(Number.isSafeInteger(device.iommuGroup) && device.iommuGroup >= 0)) {
    invalid('iommuGroup must be a non-negative integer');
  }
  if (!ops || typeof ops !== 'object') invalid('no parent ops');
  if (!isFn(ops.create)) invalid('ops.create is mandatory');
  if (!isFn(ops.remove)) invalid('ops.remove is mandatory');
  if (profile === 'modern' && !isEntryName(ops.driver)) invalid('ops.driver must name the mdev bus driver');
  if (!KNOWN_APIS.has(ops.deviceApi)) invalid(`unknown deviceApi ${JSON.stringify(ops.deviceApi)}`);
  if (ops.maxInstances !== undefined && !(Number.isSafeInteger(ops.maxInstances) && ops.maxInstances >= 0)) {
    invalid('maxInstances must be a non-negative integer');
  }
  for (const k of ['getAvailable', 'open', 'close', 'read', 'write', 'ioctl', 'mmap', 'notifier'] as const) {
    if (ops[k] !== undefined && !isFn(ops[k])) invalid(`ops.${k} must be a function`);
  }
  if (!Array.isArray(ops.types) || ops.types.length === 0) invalid('at least one type is mandatory');
  const seen = new Set<string>();
  for (const t of ops.types) {
    if (!t || !isEntryName(t.id)) invalid('every type needs a non-empty id');
    if (t.deviceApi !== undefined && !KNOWN_APIS.has(t.deviceApi)) invalid(`type ${t.id}: unknown deviceApi`);
    if (seen.has(t.id)) throw new MdevError('EEXIST', `registerDevice: duplicate type id ${JSON.stringify(t.id)}`);
    seen.add(t.id);
  }
}
