/** A kernfs tree over a real directory (base-dir.ts), merged by view.ts; host-ids.ts reads what the base already numbers. */
export * from './base-dir.js';
export * from './view.js';
export * from './host-ids.js';
