/**
 * The two mdev stores that change the core, parsing the written bytes at the
 * edge and calling its typed API (drivers/vfio/mdev/mdev_sysfs.c
 * create_store and remove_store).
 */
import { MdevError, errorMessage } from '../core/errno.js';
import type { MdevType } from '../core/api.js';
import type { CoreDevice, MdevCoreApi } from '../core/model.js';
import { kstrtoul } from './kstrtoul.js';
import { parseCreateBuffer, writtenBytes } from './uuid-parse.js';

/** create_store: 36 or 37 bytes holding a UUID, then mdev_device_create. */
export async function createStore(core: MdevCoreApi, type: MdevType, written: Buffer | string): Promise<CoreDevice> {
  return core.create(type, parseCreateBuffer(written));
}

/** remove_store: kstrtoul(buf, 0); 0 does nothing; anything else removes. */
export async function removeStore(core: MdevCoreApi, dev: CoreDevice, written: Buffer | string): Promise<void> {
  const buf = writtenBytes(written);
  if (buf.length === 0) return; // sysfs never calls a store for 0 bytes
  let value: bigint;
  try {
    value = kstrtoul(buf, 0);
  } catch (e) {
    throw new MdevError('EINVAL', `remove: ${errorMessage(e)}`);
  }
  if (value === 0n) return;
  await core.removeSelf(dev);
}
