/**
 * Device names: a mediated device is named by its UUID in lowercase (the
 * kernel prints it with %pUl), whatever case it was created with.
 */
import { MdevError } from './errno.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Canonical form used for lookups (device names are lowercase). */
export function canonicalUuid(uuid: string): string {
  return uuid.toLowerCase();
}

/** The device name for `uuid` (any case); EINVAL unless it is a UUID (lib/uuid.c uuid_is_valid). */
export function deviceName(uuid: unknown): string {
  if (typeof uuid !== 'string' || !UUID.test(uuid)) throw new MdevError('EINVAL', `create: ${JSON.stringify(uuid)} is not a UUID`);
  return canonicalUuid(uuid);
}
