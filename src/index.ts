// The package's public entry (`import … from 'mdevfs'`; a plugin loaded by
// mdevfs gets this installation's copy, see src/daemon/self-import-hook.ts).
import { fileURLToPath } from 'node:url';

// The plugin API: the types, constants and MdevError of src/core/api.ts.
export * from './core/api.js';
export { errnoNumber, errnoName, toMdevError } from './core/errno.js';

// The core in-process, without FUSE (how the tests drive plugins).
export type * from './core/model.js';
export { MdevCore, VFIO_MDEV_DRIVER } from './core/core.js';
export { callPlugin, showAttribute, storeAttribute, showDescription, DEFAULT_CALL_TIMEOUT_MS } from './core/plugin-call.js';
export type { PluginCallOptions } from './core/plugin-call.js';
// What a write(2) to `create` or `remove` does, bytes first: parse as the
// kernel's create_store / remove_store do, then the core's typed call
// (core.create(type, uuid), core.removeSelf(dev)).
export { createStore, removeStore } from './sysfs/stores.js';
export { parseCreateBuffer } from './sysfs/uuid-parse.js';
export { kstrtoul } from './sysfs/kstrtoul.js';

// A tree mounted from a Node test: mount(dir, options) → { core, mountpoint, unmount() }.
// Loaded on first use, so a plugin importing this entry does not load FUSE.
import type { LibraryMount, LibraryMountOptions } from './daemon/library.js';
export type { LibraryMount, LibraryMountOptions };
export type { LogLevel, Logger } from './daemon/log.js';
export async function mount(dir: string, options?: LibraryMountOptions): Promise<LibraryMount> {
  return (await import('./daemon/library.js')).mount(dir, options);
}

// Vendors described in JSON (src/config/README.md): load, validate and compile
// a config into a VendorPlugin, capture one from a host, and the capacity
// building blocks a TypeScript plugin may share with them.
export * from './config/index.js';

/** The JSON Schema of a config file (also `import.meta.resolve('mdevfs/config-schema.json')`). */
export function configSchemaPath(): string {
  return fileURLToPath(new URL('../src/config/mdevfs-config.schema.json', import.meta.url));
}

// The control plane (docs/control.md): in-process, the core's own methods
// (core.unplug, core.plug, core.faults, core.setAvailable, core.controlState);
// for a running daemon, a client of its control socket.
export { ControlClient, type EventStream } from './daemon/control-client.js';
export { CONTROL_ENV } from './daemon/control-path.js';
export type { ControlState } from './core/control.js';
export type { Fault, FaultOp, FaultSpec, FaultTarget, FaultTable } from './core/faults.js';
