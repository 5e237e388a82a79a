/**
 * The daemon: load the vendor drivers into a core, present it as a sysfs
 * tree and mount that; with `vfioDir`, the same daemon serves a second
 * mount, the VFIO device files (src/devfs/vfio.ts), `<vfioDir>/<N>` per IOMMU
 * group. With `uevents`, every uevent is written there as a JSON line.
 *
 * Used by `mdevfs mount` (./foreground.ts) and by `mdevfs run`'s inner
 * process (src/run/inner.ts). It installs no signal handlers.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { VendorPlugin } from '../core/api.js';
import { errorMessage, firstLine, toMdevError } from '../core/errno.js';
import { MdevCore } from '../core/core.js';
import { SysfsPresenter } from '../sysfs/presenter.js';
import { FRAMEWORK_DIRS } from '../sysfs/tree.js';
import { BaseDir, OverlayView, readHostIds } from '../overlay/index.js';
import { VfioDevPresenter } from '../devfs/vfio.js';
import { MountError, mountTree, preflight, type EngineName, type Mounted, type PreflightResult } from '../fuse/mount.js';
import { startControlSocket, type ControlServer } from './control-socket.js';
import { UserError } from './errors.js';
import { verboseLogger } from './log.js';
import type { ServeOptions } from './options.js';
import { loadPlugins } from './plugins.js';
import type { UeventLog } from './uevent-log.js';
import { UdevBroadcaster, netlinkUdevSink } from '../udev/broadcast.js';
import { UdevDatabase } from '../udev/database.js';

/** A served tree. Unmount with `mounted.unmount()`, then `shutdown()`. */
export interface Serving {
  core: MdevCore;
  presenter: SysfsPresenter;
  /** The tree's mount; with a vfioDir its unmount() unmounts the device files too. */
  mounted: Mounted;
  /** The VFIO device files, when a vfioDir was given. */
  vfio?: { presenter: VfioDevPresenter; mounted: Mounted };
  /** A stale mount was found on the mount point and cleared. */
  recoveredStale: boolean;
  /** The udev broadcast, when `udevBroadcast` was asked for. */
  udev?: UdevBroadcaster;
  /** Stop writing the udev database and broadcasting (before the private /run goes). */
  stopUdev(): void;
  /** The control socket, when `controlSocket` was asked for. */
  control?: ControlServer;
  /** Stop presenting and unload every plugin (call after unmounting). */
  shutdown(): Promise<void>;
}

/** MountError (from src/fuse) is the user's to fix: rethrow it as a UserError. */
function asUserError(e: unknown): unknown {
  return e instanceof MountError ? new UserError(e.message) : e;
}

/**
 * Config files come first: reading, validating and compiling them touches
 * nothing, so a bad one (every problem in it reported) stops us before the
 * mount point is even looked at.
 */
async function loadConfigs(files: readonly string[]): Promise<VendorPlugin[]> {
  if (files.length === 0) return [];
  // Loaded only for a config: most starts (mdevfs run's above all) have none (test/bench/start.ts).
  const { ConfigError, loadConfigFile } = await import('../config/index.js');
  const out: VendorPlugin[] = [];
  for (const file of files) {
    try {
      out.push(await loadConfigFile(file));
    } catch (e) {
      if (e instanceof ConfigError) throw new UserError(e.message);
      throw e;
    }
  }
  return out;
}

/** Both mount points checked; the device files' must be outside the tree's, and not contain it. */
async function preflightBoth(
  dir: string,
  vfioDir: string | undefined,
  log: (m: string) => void,
  engine: EngineName | undefined,
): Promise<{ tree: PreflightResult; vfio?: PreflightResult }> {
  try {
    const tree = await preflight(dir, log, engine);
    if (vfioDir === undefined) return { tree };
    const vfio = await preflight(vfioDir, log, engine);
    const [a, b] = [tree.mountpoint, vfio.mountpoint];
    if (a === b || b.startsWith(a + path.sep) || a.startsWith(b + path.sep)) {
      throw new MountError(`--vfio-dir ${b} must be outside the tree's mount point ${a} (and not contain it)`);
    }
    return { tree, vfio };
  } catch (e) {
    throw asUserError(e);
  }
}

async function openUevents(file: string, mountpoints: ReadonlyArray<string | undefined>): Promise<UeventLog> {
  for (const mp of mountpoints) {
    // Our own mount: a synchronous write into it would deadlock the daemon.
    if (mp && file.startsWith(mp + path.sep)) throw new UserError(`--uevents ${file} is inside the mount point ${mp}`);
  }
  try {
    const { openUeventLog } = await import('./uevent-log.js');
    // Through links too: a file created there would also make the mount point non-empty for good.
    return await openUeventLog(
      file,
      mountpoints.filter(mp => mp !== undefined),
    );
  } catch (e) {
    throw new UserError(`--uevents: cannot open ${file}: ${firstLine(errorMessage(e))}`);
  }
}

/**
 * The overlay's base, opened; a path given by the user must not hold either
 * mount point (a lookup in the base would then reach our own mount, and a
 * synchronous one deadlocks the daemon).
 */
async function openBase(
  overlay: string | BaseDir | undefined,
  mountpoints: ReadonlyArray<string | undefined>,
): Promise<BaseDir | undefined> {
  if (overlay === undefined || overlay instanceof BaseDir) return overlay;
  let real: string;
  try {
    real = await fsp.realpath(overlay);
    const st = await fsp.stat(real);
    if (!st.isDirectory()) throw new UserError(`--overlay ${overlay} is not a directory`);
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw new UserError(`--overlay ${overlay}: ${firstLine(errorMessage(e))}`);
  }
  for (const mp of mountpoints) {
    if (mp && (mp === real || mp.startsWith(real === '/' ? '/' : real + path.sep))) {
      throw new UserError(`--overlay ${overlay} holds the mount point ${mp}; give a directory outside it`);
    }
  }
  try {
    return BaseDir.open(real);
  } catch (e) {
    throw new UserError(`--overlay ${overlay}: ${firstLine(errorMessage(e))}`);
  }
}

/** The tree's mount, whose unmount takes the device files' mount along. */
function bothMounts(tree: Mounted, devices: Mounted): Mounted {
  let unmounting: Promise<void> | undefined;
  return {
    mountpoint: tree.mountpoint,
    options: tree.options,
    unmount: () => (unmounting ??= Promise.all([devices.unmount(), tree.unmount()]).then(() => {})),
    settled: () => Promise.all([tree.settled(), devices.settled()]).then(() => {}),
    isMounted: () => tree.isMounted(),
  };
}

/**
 * Preflight, then a core with `plugins` (or the ones `opts.driver` and
 * `opts.config` name) loaded and presented, mounted on `dir`. Every failure
 * is a one-line UserError, and leaves nothing mounted or loaded behind.
 */
export async function serveTree(dir: string, opts: ServeOptions, plugins?: readonly VendorPlugin[]): Promise<Serving> {
  const logger = opts.logger ?? verboseLogger(opts.verbose);
  const log = logger.warn;
  const vlog = logger.debug;

  const configPlugins = plugins ? [] : await loadConfigs(opts.config ?? []);
  const scenarios = opts.scenario === undefined ? undefined : await import('./scenario.js');
  const scenario = opts.scenario === undefined ? undefined : await scenarios!.loadScenario(opts.scenario);
  const pre = await preflightBoth(dir, opts.vfioDir, log, opts.engine);
  const ueventLog =
    opts.uevents === undefined ? undefined : await openUevents(path.resolve(opts.uevents), [pre.tree.mountpoint, pre.vfio?.mountpoint]);

  if (!plugins) {
    // The sample drivers are the default only when neither --driver nor --config is given.
    // A PluginLoadError is a UserError already.
    const drivers = opts.driver ?? [];
    plugins = drivers.length > 0 || configPlugins.length === 0 ? await loadPlugins(drivers, process.cwd(), opts.profile) : [];
    plugins = [...plugins, ...configPlugins];
  }

  let udev: UdevBroadcaster | undefined;
  if (opts.udevBroadcast) {
    try {
      udev = new UdevBroadcaster(netlinkUdevSink(m => log(`mdevfs: ${m}`)));
    } catch (e) {
      await ueventLog?.close();
      throw new UserError(`cannot open the udev netlink socket: ${firstLine(errorMessage(e))}`);
    }
  }

  // Opened last before the core, whose shutdown closes it (when it is ours).
  let base: BaseDir | undefined;
  let hostIds: Awaited<ReturnType<typeof readHostIds>> | undefined;
  try {
    // The device files' mount is served by this process too: a base holding it would deadlock as well.
    base = await openBase(opts.overlay, [pre.tree.mountpoint, pre.vfio?.mountpoint]);
    hostIds = base && (await readHostIds(base));
  } catch (e) {
    await ueventLog?.close();
    udev?.close();
    throw e;
  }
  const ownBase = base !== opts.overlay;
  const core = new MdevCore({ profile: opts.profile, callTimeoutMs: opts.callTimeout, hostIds });
  let db: UdevDatabase | undefined;
  core.on('log', m => vlog(`mdevfs: ${m}`));
  if (ueventLog) core.on('uevent', ev => ueventLog.write(ev));
  // In the core's order: the database entry is written, then the message is
  // handed to the socket (as udevd does). The first of a burst leaves before
  // the write(2) that caused it returns; the netlink binding queues the rest
  // for the next turn of the event loop.
  if (opts.udevDatabase !== undefined) {
    db = new UdevDatabase(opts.udevDatabase, m => log(`mdevfs: ${m}`));
    const database = db;
    core.on('uevent', ev => database.handle(ev));
  }
  if (udev) core.on('uevent', ev => udev.handle(ev));
  if (logger.enabled('debug')) {
    core.on('uevent', ev => {
      const kv = Object.entries(ev)
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => `${k}=${String(v)}`);
      vlog(`uevent: ${kv.join(' ')}`);
    });
  }
  // Attached before any plugin runs, so every change is presented as it happens.
  const presenter = new SysfsPresenter(core, { log: vlog }).attach();
  const vfioPresenter = pre.vfio ? new VfioDevPresenter(core, { log: vlog }).attach() : undefined;
  const shutdown = async () => {
    presenter.detach();
    vfioPresenter?.detach();
    // Closes every VFIO handle still open through the device files, too.
    await core.shutdown();
    await ueventLog?.close();
    udev?.close();
    if (ownBase) base?.close();
  };

  for (const p of plugins) {
    try {
      await core.loadPlugin(p);
    } catch (e) {
      const err = toMdevError(e);
      await shutdown().catch(() => {});
      const msg = firstLine(err.message).replace(/^plugin \S+: init: /, '');
      throw new UserError(`driver ${p.name} failed to initialise: ${msg === err.errno || !msg ? err.errno : `${msg} (${err.errno})`}`);
    }
  }

  const mountOptions = {
    allowOther: opts.allowOther,
    autoUnmount: opts.autoUnmount,
    fsname: opts.fsname,
    trace: logger.enabled('debug') ? vlog : undefined,
  };
  let mounted: Mounted;
  try {
    const view = base && new OverlayView(presenter.root, base, FRAMEWORK_DIRS);
    mounted = await mountTree(pre.tree, { root: presenter.root, view, ...mountOptions });
  } catch (e) {
    await shutdown().catch(() => {});
    throw asUserError(e);
  }
  let vfio: Serving['vfio'];
  if (pre.vfio && vfioPresenter) {
    try {
      const vm = await mountTree(pre.vfio, { root: vfioPresenter.root, ...mountOptions });
      vfio = { presenter: vfioPresenter, mounted: vm };
      mounted = bothMounts(mounted, vm);
    } catch (e) {
      await mounted.unmount().catch(() => {});
      await shutdown().catch(() => {});
      throw asUserError(e);
    }
  }
  const stopUdev = (): void => {
    db?.close();
    udev?.close();
  };
  let control: ControlServer | undefined;
  if (opts.controlSocket !== undefined) {
    const socket = typeof opts.controlSocket === 'string' ? opts.controlSocket : opts.controlSocket(pre.tree.mountpoint);
    try {
      const served = mounted;
      control = await startControlSocket(core, socket, () => served.settled());
    } catch (e) {
      await mounted.unmount().catch(() => {});
      await shutdown().catch(() => {});
      throw e;
    }
  }
  const playing = scenario && scenarios!.playScenario(core, scenario, log, vlog);
  const shutdownAll = async (): Promise<void> => {
    playing?.stop();
    await control?.close();
    await shutdown();
  };
  return { core, presenter, mounted, vfio, udev, control, recoveredStale: pre.tree.recoveredStale, shutdown: shutdownAll, stopUdev };
}
