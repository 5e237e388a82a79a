/**
 * `mount()` for Node tests (exported by the package entry): the tree of
 * `mdevfs mount` served from the caller's own process, with the core at
 * hand. The caller's synchronous fs calls into the mount would wait on the
 * thread that answers them: use fs.promises or child processes.
 */
import type { Profile, VendorPlugin } from '../core/api.js';
import type { EngineName } from '../fuse/engines.js';
import type { MdevCore } from '../core/core.js';
import { DEFAULT_CALL_TIMEOUT_MS } from '../core/plugin-call.js';
import { ConfigError, loadConfigFile } from '../config/index.js';
import { createLogger, type LogLevel, type Logger } from './log.js';
import { loadPlugins } from './plugins.js';
import { serveTree } from './serve-tree.js';

export interface LibraryMountOptions {
  /** Vendor plugins, or paths/module names as `--driver` takes them (default: the samples, unless `config` is given). */
  drivers?: ReadonlyArray<VendorPlugin | string>;
  /** Declarative vendor configs (JSON files), as `--config`. */
  config?: readonly string[];
  /** Which kernel to present (default modern). */
  profile?: Profile;
  /** Also serve the VFIO device files on this directory. */
  vfioDir?: string;
  /** Bound on every plugin callback, ms (default 5000). */
  callTimeout?: number;
  /** Write every uevent to this file, one JSON line each. */
  uevents?: string;
  allowOther?: boolean;
  /** The FUSE engine: `kernel` (root only) or `fuse-native`; default: $MDEVFS_ENGINE, else kernel as root. */
  engine?: EngineName;
  /** The daemon's messages on stderr above this level are dropped (default warn); ignored with `logger`. */
  logLevel?: LogLevel;
  logger?: Logger;
}

export interface LibraryMount {
  /** The core behind the files: inspect it, or drive it (core.create, core.removeSelf, …). */
  core: MdevCore;
  /** Where the tree is mounted (the real path). */
  mountpoint: string;
  /** Where the VFIO device files are, with `vfioDir`. */
  vfioDir?: string;
  /** Unmount and shut the plugins down (idempotent). */
  unmount(): Promise<void>;
  /**
   * Resolves once every change made so far (through `core` too) has reached the
   * kernel's caches (docs/fuse.md#caching): await it after driving `core`
   * directly, before another process looks. Writes through the files need nothing.
   */
  settled(): Promise<void>;
}

async function resolveDrivers(opts: LibraryMountOptions): Promise<VendorPlugin[]> {
  const out: VendorPlugin[] = [];
  for (const d of opts.drivers ?? []) out.push(...(typeof d === 'string' ? await loadPlugins([d]) : [d]));
  for (const file of opts.config ?? []) {
    try {
      out.push(await loadConfigFile(file));
    } catch (e) {
      throw e instanceof ConfigError ? new Error(e.message) : e;
    }
  }
  // As the CLI: the sample drivers when nothing is named.
  return out.length > 0 ? out : loadPlugins([], process.cwd(), opts.profile);
}

/** Mount the emulated /sys on `dir` (an existing, empty directory) from this process. */
export async function mount(dir: string, opts: LibraryMountOptions = {}): Promise<LibraryMount> {
  const plugins = await resolveDrivers(opts);
  const serving = await serveTree(
    dir,
    {
      profile: opts.profile ?? 'modern',
      callTimeout: opts.callTimeout ?? DEFAULT_CALL_TIMEOUT_MS,
      vfioDir: opts.vfioDir,
      uevents: opts.uevents,
      allowOther: opts.allowOther,
      engine: opts.engine,
      logger: opts.logger ?? createLogger({ level: opts.logLevel ?? 'warn' }),
    },
    plugins,
  );
  let stopping: Promise<void> | undefined;
  return {
    core: serving.core,
    mountpoint: serving.mounted.mountpoint,
    ...(serving.vfio ? { vfioDir: serving.vfio.mounted.mountpoint } : {}),
    settled: () => serving.mounted.settled(),
    unmount: () =>
      (stopping ??= (async () => {
        await serving.mounted.unmount();
        await serving.shutdown();
      })()),
  };
}
