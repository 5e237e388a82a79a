/** The kernfs tree (nodes.ts, bin.ts), its open files (open.ts) and listing order (readdir.ts): what sysfs/ and devfs/ build on. */
export * from './nodes.js';
export * from './bin.js';
export * from './open.js';
export * from './readdir.js';
