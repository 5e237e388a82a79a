// The package's public entry: the plugin API and the core.
export * from './core/api.js';
export { MdevError, errnoNumber, errnoName, toMdevError } from './core/errno.js';
export type { ErrnoName } from './core/errno.js';
export type * from './core/model.js';
export { MdevCore, VFIO_MDEV_DRIVER } from './core/core.js';
export { callPlugin, showAttribute, storeAttribute, showDescription, DEFAULT_CALL_TIMEOUT_MS } from './core/plugin-call.js';
export type { PluginCallOptions } from './core/plugin-call.js';
export { parseCreateBuffer } from './sysfs/uuid-parse.js';
export { kstrtoul } from './sysfs/kstrtoul.js';
