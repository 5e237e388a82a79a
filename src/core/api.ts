/**
 * The mdevfs plugin API: everything a TypeScript vendor driver sees. These
 * types are the plugin author's reference; README.md ("Write your own vendor
 * driver") and examples/ show them in use. They live in api/: basics.ts (the
 * vocabulary and attributes), objects.ts (parent, types, ops, devices),
 * plugin.ts (VendorPlugin, MdevHost, MdevDriver), pci-config.ts (the
 * configuration space of a PCI parent, for its `config` binary attribute)
 * and pci.ts (PCI functions with SR-IOV: a PF and its VFs).
 *
 * The shape is the kernel's first mainline mdev framework (Linux 4.10,
 * include/linux/mdev.h): a vendor registers its physical device as an mdev
 * *parent* with a table of `ParentOps` (supported types, create/remove,
 * attribute groups and the VFIO device callbacks), and *bus drivers*
 * (`struct mdev_driver`) bind every mediated device. mdevfs presents the same
 * plugin as today's kernel (profile 'modern', the default) or as 4.10
 * (profile 'legacy'); `ParentOps` says which profile reads which field and
 * what it became in today's kernel.
 *
 * A plugin is a plain module whose default export is a `VendorPlugin`:
 *
 * ```ts
 * import { MdevError, type ParentOps, type VendorPlugin } from 'mdevfs';
 *
 * interface Port { baud: number }         // the per-device state: MdevDevice<Port>.drvdata
 *
 * const plugin: VendorPlugin = {
 *   name: 'mtty',
 *   async init(mdev) {
 *     let left = 4;
 *     const ops: ParentOps<Port> = {
 *       driver: 'mtty', deviceApi: 'vfio-pci',
 *       types: [{ id: '1', name: 'Single port serial' }],
 *       getAvailable: () => left,
 *       create(dev) {
 *         if (left === 0) throw new MdevError('ENOSPC');
 *         left--;
 *         dev.drvdata = { baud: 9600 };
 *       },
 *       remove() { left++; },
 *     };
 *     await mdev.registerDevice({ path: 'devices/virtual/mtty/mtty', typePrefix: 'mtty', subsystem: { class: 'mtty' } }, ops);
 *   },
 * };
 * export default plugin;
 * ```
 *
 * Calls. Every callback may return its value or a promise of it, except
 * `ParentOps.getAvailable`, which the core calls synchronously. Each call is
 * bounded by the core's call timeout (`--call-timeout`, default 5000 ms): one
 * that has not settled by then fails with ETIMEDOUT. Attribute show/store and
 * a type's description function have the same bound. create, remove and a bus
 * driver's probe/remove run one at a time under the core's lock (mdev_list_lock
 * in drivers/vfio/mdev/mdev_core.c); calling back into `MdevHost`'s register
 * or unregister functions from inside them fails with EDEADLK.
 *
 * Errors. Throw an `MdevError('ENOSPC')` (or `new MdevError(28)`), an errno
 * name ('ENOSPC'), or any object with an `errno` name or Linux errno number
 * (e.g. `{ errno: 99 }`, or -99 kernel-style); the file operation fails with
 * that errno. Every Linux errno name is one (`ErrnoName`), and three of the
 * kernel's own: EPROBE_DEFER and ENOIOCTLCMD reach user space as EAGAIN and
 * ENOTTY, as the kernel turns them, and ENOTSUPP as EOPNOTSUPP (FUSE cannot
 * carry the 524 the kernel lets through). Anything else
 * thrown, or a name or number that is no errno, fails with EIO and a message
 * that says what was thrown (an attribute's failure is logged with --verbose);
 * a timeout fails with ETIMEDOUT. Neither takes the daemon down.
 */
export { MdevError } from './errno.js';
export type { ErrnoName } from './errno.js';
export * from './api/basics.js';
export type * from './api/objects.js';
export * from './api/plugin.js';
export * from './api/pci-config.js';
export * from './api/pci.js';
