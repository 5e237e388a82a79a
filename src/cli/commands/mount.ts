/**
 * `mdevfs mount <dir>`: load the vendor drivers into a core, present it as a
 * sysfs tree, mount that in the foreground, and unmount on SIGINT/SIGTERM.
 *
 * `serveTree` is the reusable part (also used by `mdevfs run`): preflight,
 * core + presenter + plugins, mount. It installs no signal handlers.
 *
 * With `--vfio-dir <dir2>` the same daemon serves a second mount: the VFIO
 * device files (src/devfs/vfio.ts), `<dir2>/<N>` per IOMMU group. With
 * `--uevents <file>` every uevent is written there as a JSON line.
 */
import path from 'node:path';
import type { Command } from 'commander';
import type { Profile, VendorPlugin } from '../../core/api.js';
import { toMdevError } from '../../core/errno.js';
import { MdevCore } from '../../core/core.js';
import { SysfsPresenter } from '../../sysfs/presenter.js';
import { VfioDevPresenter } from '../../devfs/vfio.js';
import { openUeventLog, type UeventLog } from '../../daemon/uevent-log.js';
import { MountError, mountTree, preflight, unmountOnSignals, type Mounted } from '../../fuse/mount.js';
import { PluginLoadError, loadPlugins } from '../../daemon/plugins.js';
import { ConfigError, loadConfigFile } from '../../config/index.js';
import { CliError, stderrLine } from '../util.js';
import { addServeOptions } from '../serve-options.js';

export interface ServeOptions {
  /** Driver specs to load when no plugins are passed to serveTree (empty: the samples, unless `config` is given). */
  driver?: string[];
  /** Declarative config files (JSON) to load when no plugins are passed to serveTree, after the drivers. */
  config?: string[];
  profile: Profile;
  verbose?: boolean;
  allowOther?: boolean;
  /** libfuse auto_unmount (default true). */
  autoUnmount?: boolean;
  /** Bound on every plugin callback and attribute show/store, ms. */
  callTimeout: number;
  /** Serve the VFIO device files (<vfioDir>/<group>) on this second mount point. */
  vfioDir?: string;
  /** Write every uevent to this file, one JSON line each. */
  uevents?: string;
}

export interface MountCommandOptions extends ServeOptions {
  driver: string[];
  config: string[];
  autoUnmount: boolean;
}

/** A served tree. Unmount with `mounted.unmount()`, then `shutdown()`. */
export interface Serving {
  core: MdevCore;
  presenter: SysfsPresenter;
  /** The tree's mount; with --vfio-dir its unmount() unmounts the device files too. */
  mounted: Mounted;
  /** The VFIO device files, when a vfioDir was given. */
  vfio?: { presenter: VfioDevPresenter; mounted: Mounted };
  /** A stale mount was found on the mount point and cleared. */
  recoveredStale: boolean;
  /** Stop presenting and unload every plugin (call after unmounting). */
  shutdown(): Promise<void>;
}

export function registerMount(program: Command): void {
  const cmd = program
    .command('mount')
    .description('mount the emulated /sys at <dir> (in the foreground; SIGINT/SIGTERM unmounts)')
    .argument('<dir>', 'an existing, empty directory');
  addServeOptions(cmd)
    .option('--vfio-dir <dir>', 'also mount the VFIO device files there (an existing, empty directory): <dir>/<N> opens the mediated device of IOMMU group N; read/write at region offsets (index << 40)')
    .option('--no-auto-unmount', 'do not ask libfuse to unmount if the daemon dies (leaves a stale mount on a crash; for tests)')
    .action(async (dir: string, opts: MountCommandOptions) => {
      await mountCommand(dir, opts);
    });
}

function firstLine(s: string): string {
  return s.split('\n').find(l => l.trim() !== '')?.trim() ?? s;
}

/**
 * Preflight, then a core with `plugins` (or the ones `opts.driver` names)
 * loaded and presented, mounted on `dir`. Every failure is a one-line
 * CliError, and leaves nothing mounted or loaded behind.
 */
export async function serveTree(dir: string, opts: ServeOptions, plugins?: readonly VendorPlugin[]): Promise<Serving> {
  const log = (m: string) => stderrLine(m);
  const vlog = opts.verbose ? log : () => {};

  // Config files first: reading, validating and compiling them touches nothing,
  // so a bad one (every problem in it reported) stops us before the mount point.
  const configPlugins: VendorPlugin[] = [];
  if (!plugins) {
    for (const file of opts.config ?? []) {
      try {
        configPlugins.push(await loadConfigFile(file));
      } catch (e) {
        if (e instanceof ConfigError) throw new CliError(e.message);
        throw e;
      }
    }
  }

  let pre;
  let vfioPre;
  try {
    pre = await preflight(dir, log);
    if (opts.vfioDir !== undefined) {
      vfioPre = await preflight(opts.vfioDir, log);
      const [a, b] = [pre.mountpoint, vfioPre.mountpoint];
      if (a === b || b.startsWith(a + path.sep) || a.startsWith(b + path.sep)) {
        throw new MountError(`--vfio-dir ${b} must be outside the tree's mount point ${a} (and not contain it)`);
      }
    }
  } catch (e) {
    if (e instanceof MountError) throw new CliError(e.message);
    throw e;
  }

  let ueventLog: UeventLog | undefined;
  if (opts.uevents !== undefined) {
    const file = path.resolve(opts.uevents);
    for (const mp of [pre.mountpoint, vfioPre?.mountpoint]) {
      // Our own mount: a synchronous write into it would deadlock the daemon.
      if (mp && file.startsWith(mp + path.sep)) throw new CliError(`--uevents ${file} is inside the mount point ${mp}`);
    }
    try {
      ueventLog = await openUeventLog(file);
    } catch (e) {
      throw new CliError(`--uevents: cannot open ${file}: ${firstLine(e instanceof Error ? e.message : String(e))}`);
    }
  }

  if (!plugins) {
    try {
      // The sample drivers are the default only when neither --driver nor --config is given.
      const drivers = opts.driver ?? [];
      plugins = drivers.length > 0 || configPlugins.length === 0 ? await loadPlugins(drivers) : [];
      plugins = [...plugins, ...configPlugins];
    } catch (e) {
      if (e instanceof PluginLoadError) throw new CliError(e.message);
      throw e;
    }
  }

  const core = new MdevCore({ profile: opts.profile, callTimeoutMs: opts.callTimeout });
  core.on('log', m => vlog(`mdevfs: ${m}`));
  if (ueventLog) {
    const ul = ueventLog;
    core.on('uevent', ev => ul.write(ev));
  }
  if (opts.verbose) {
    core.on('uevent', ev => {
      const kv = Object.entries(ev).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${String(v)}`);
      log(`uevent: ${kv.join(' ')}`);
    });
  }
  // Attached before any plugin runs, so every change is presented as it happens.
  const presenter = new SysfsPresenter(core, { attrTimeoutMs: opts.callTimeout, log: vlog }).attach();
  const vfioPresenter = vfioPre ? new VfioDevPresenter(core, { log: vlog }).attach() : undefined;
  const shutdown = async () => {
    presenter.detach();
    vfioPresenter?.detach();
    // Closes every VFIO handle still open through the device files, too.
    await core.shutdown();
    await ueventLog?.close();
  };

  for (const p of plugins) {
    try {
      await core.loadPlugin(p);
    } catch (e) {
      const err = toMdevError(e);
      await shutdown().catch(() => {});
      const msg = firstLine(err.message).replace(/^plugin \S+: init: /, '');
      throw new CliError(`driver ${p.name} failed to initialise: ${msg === err.errno || !msg ? err.errno : `${msg} (${err.errno})`}`);
    }
  }

  let mounted: Mounted;
  let vfio: Serving['vfio'];
  try {
    mounted = await mountTree(pre, {
      root: presenter.root,
      allowOther: opts.allowOther,
      autoUnmount: opts.autoUnmount,
      trace: opts.verbose ? log : undefined,
    });
  } catch (e) {
    await shutdown().catch(() => {});
    if (e instanceof MountError) throw new CliError(e.message);
    throw e;
  }
  if (vfioPre && vfioPresenter) {
    try {
      const vm = await mountTree(vfioPre, {
        root: vfioPresenter.root,
        allowOther: opts.allowOther,
        autoUnmount: opts.autoUnmount,
        trace: opts.verbose ? log : undefined,
      });
      vfio = { presenter: vfioPresenter, mounted: vm };
      mounted = bothMounts(mounted, vm);
    } catch (e) {
      await mounted.unmount().catch(() => {});
      await shutdown().catch(() => {});
      if (e instanceof MountError) throw new CliError(e.message);
      throw e;
    }
  }
  return { core, presenter, mounted, vfio, recoveredStale: pre.recoveredStale, shutdown };
}

/** The tree's mount, whose unmount takes the device files' mount along. */
function bothMounts(tree: Mounted, devices: Mounted): Mounted {
  let unmounting: Promise<void> | undefined;
  return {
    mountpoint: tree.mountpoint,
    options: tree.options,
    unmount: () => (unmounting ??= Promise.all([devices.unmount(), tree.unmount()]).then(() => {})),
    isMounted: () => tree.isMounted(),
  };
}

export async function mountCommand(dir: string, opts: MountCommandOptions): Promise<void> {
  const log = (m: string) => stderrLine(m);
  const serving = await serveTree(dir, opts);

  // From here on the daemon must not die from a stray exception: log it.
  const internal = (e: unknown) =>
    log(`mdevfs: internal error: ${e instanceof Error ? (opts.verbose ? e.stack : e.message) : String(e)}`);
  process.on('uncaughtException', internal);
  process.on('unhandledRejection', internal);

  unmountOnSignals(serving.mounted, { log, cleanup: serving.shutdown });
  if (serving.recoveredStale) log(`mdevfs: recovered the stale mount at ${serving.mounted.mountpoint}`);
  const n = serving.presenter.parentCount;
  const devices = serving.vfio ? `, VFIO device files at ${serving.vfio.mounted.mountpoint}` : '';
  process.stdout.write(`mdevfs: mounted ${serving.mounted.mountpoint} (profile ${serving.core.profile}, ${n} parent${n === 1 ? '' : 's'})${devices}\n`);
}
