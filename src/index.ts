// The package's public entry: the plugin API and the core.
export * from './core/api.js';
export { MdevError, errnoNumber, errnoName, toMdevError } from './core/errno.js';
export type { ErrnoName } from './core/errno.js';
export type * from './core/model.js';
