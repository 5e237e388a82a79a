/**
 * Extended attributes of kernfs nodes, as sysfs answers them
 * (fs/kernfs/inode.c kernfs_xattr_get / kernfs_xattr_set and the trusted,
 * security and user handlers): `trusted.` and `security.` names are stored in
 * memory per node; `user.` names can be read (ENODATA) but not set, because
 * sysfs's root lacks KERNFS_ROOT_SUPPORT_USER_XATTR; any other namespace is
 * EOPNOTSUPP. A node that is removed and made again has none.
 */
import { MdevError } from '../core/errno.js';
import type { KNode } from './nodes.js';

/** setxattr(2) flags. */
export const XATTR_CREATE = 1;
export const XATTR_REPLACE = 2;

const stores = new WeakMap<KNode, Map<string, Buffer>>();

function handler(name: string): 'stored' | 'user' {
  if (name.startsWith('trusted.') || name.startsWith('security.')) return 'stored';
  if (name.startsWith('user.')) return 'user';
  throw new MdevError('EOPNOTSUPP', `no xattr handler for ${JSON.stringify(name)}`);
}

export function getXattr(node: KNode, name: string): Buffer {
  handler(name);
  const v = stores.get(node)?.get(name);
  if (!v) throw new MdevError('ENODATA');
  return v;
}

export function listXattrs(node: KNode): string[] {
  return [...(stores.get(node)?.keys() ?? [])];
}

/** setxattr; `value` undefined removes (removexattr is a set with no value). */
export function setXattr(node: KNode, name: string, value: Buffer | undefined, flags = 0): void {
  if (handler(name) === 'user') throw new MdevError('EOPNOTSUPP', 'sysfs does not store user xattrs');
  let store = stores.get(node);
  const has = store?.has(name) ?? false;
  if (value === undefined || flags & XATTR_REPLACE) {
    if (!has) throw new MdevError('ENODATA');
  } else if (flags & XATTR_CREATE && has) {
    throw new MdevError('EEXIST');
  }
  if (value === undefined) {
    store!.delete(name);
    return;
  }
  if (!store) stores.set(node, (store = new Map<string, Buffer>()));
  store.set(name, Buffer.from(value));
}
