/** What a request handler (handlers.ts) may use of its connection (session.ts), apart so neither imports the other. */
import type { Entry } from '../../overlay/index.js';
import type { Dirent, TreeFs } from '../tree-fs.js';
import type { NodeTable } from './nodes.js';

/** How long the kernel may trust what it was told, in seconds (0: ask every time). */
export interface CachePolicy {
  entry: number;
  attr: number;
}

export interface ServeContext {
  readonly fs: TreeFs;
  readonly nodes: NodeTable;
  /** Open directories: the listing taken at OPENDIR, served by offset. */
  readonly dirs: Map<number, { entries: Dirent[] }>;
  readonly cache: CachePolicy;
  /** Negotiated at INIT. */
  minor: number;
  flags: number;
  /** What the reader's buffer holds: INIT's max_write. */
  readonly maxWrite: number;
  allocDir(entries: Dirent[]): number;
  /** How long the kernel may keep what it is told about `e`. */
  validity(e: Entry): CachePolicy;
  /** Resolves once every invalidation caused so far has reached the kernel (undefined: none pending). */
  flushed(): Promise<void> | undefined;
}
