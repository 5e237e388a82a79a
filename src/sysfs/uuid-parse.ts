/**
 * The create store's parse of the written bytes into a UUID (lib/uuid.c
 * uuid_is_valid + guid_parse, as reached from drivers/vfio/mdev/mdev_sysfs.c
 * create_store).
 */
import { MdevError } from '../core/errno.js';

const UUID_STRING_LEN = 36;
const DASHES = new Set([8, 13, 18, 23]);

function isHexByte(b: number): boolean {
  return (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66);
}

/** uuid_is_valid(): only the first 36 characters are looked at. */
export function isValidUuidPrefix(bytes: Uint8Array): boolean {
  if (bytes.length < UUID_STRING_LEN) return false;
  for (let i = 0; i < UUID_STRING_LEN; i++) {
    const b = bytes[i]!;
    if (DASHES.has(i)) {
      if (b !== 0x2d) return false;
    } else if (!isHexByte(b)) {
      return false;
    }
  }
  return true;
}

/** The bytes of one write(2), whether the caller passed a Buffer or a string. */
export function writtenBytes(written: Buffer | string): Buffer {
  return typeof written === 'string' ? Buffer.from(written, 'utf8') : written;
}

/**
 * Parse the create buffer into the device name (lowercase, %pUl).
 * Count gate on the write's byte count first (36 or 37), then the copy stops
 * at an embedded NUL, then only the first 36 characters are validated, so the
 * 37th byte is never inspected. A zero-length write fails the count gate too:
 * sysfs never calls the store for one, and callers are expected to
 * short-circuit it themselves.
 */
export function parseCreateBuffer(written: Buffer | string): string {
  const buf = writtenBytes(written);
  const count = buf.length;
  if (count < UUID_STRING_LEN || count > UUID_STRING_LEN + 1) {
    throw new MdevError('EINVAL', `create: a UUID write must be 36 or 37 bytes, got ${count}`);
  }
  const nul = buf.indexOf(0);
  const str = nul === -1 ? buf : buf.subarray(0, nul);
  if (!isValidUuidPrefix(str)) throw new MdevError('EINVAL', 'create: not a UUID');
  return str.toString('latin1', 0, UUID_STRING_LEN).toLowerCase();
}
