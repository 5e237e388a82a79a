/** The kernfs tree (nodes.ts, bin.ts) and its open files (open.ts): what sysfs/ and devfs/ build on. */
export * from './nodes.js';
export * from './bin.js';
export * from './open.js';
