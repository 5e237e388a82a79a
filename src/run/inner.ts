/**
 * A run's daemon: this Node process, in the private mount (and network)
 * namespace it was exec'd in (./namespace.ts). In order:
 *
 * 1. open the host's /sys (the overlay's base, unless --bare: docs/overlay.md);
 * 2. first batch of mounts (./script.ts), while the daemon's modules load: a
 *    staging tmpfs over /sys (nothing is created on the host), the overlay
 *    over /dev (./dev-vfio.ts), with udev a private /run with /run/udev
 *    (./run-udev.ts; lo up for the broadcast), the host's devices/system
 *    staged read-only (./host-binds.ts); then every mount made shared;
 * 3. fork the command's side, the gate (./gate.ts): PID 1 of a pid namespace
 *    of its own, in a slave mount namespace, waiting to run the command;
 * 4. load the plugins and mount the tree on a directory of the staging tmpfs;
 * 5. second batch: the device files on /dev/vfio, the host's subtrees into
 *    the tree, the tree over /sys, a scratch tmpfs over /etc/mdevctl.d
 *    (unless --keep-etc), any extra mounts (RunOptions.mounts);
 * 6. open the gate: the command runs with inherited stdio (and, with udev,
 *    SYSTEMD_DEVICE_VERIFY_SYSFS=0);
 * 7. when it exits: shut the plugins down, exit with its status.
 *
 * Nothing is unmounted: the mount namespaces are this process's and the
 * gate's, and they go, with every mount in them, when both have exited, for
 * whatever reason, SIGKILL included.
 *
 * Rule of this file: no synchronous fs call on a path after the mount. /sys
 * is our own FUSE tree, and a synchronous call into it from here deadlocks.
 */
import { errorMessage } from '../core/errno.js';
import { UserError } from '../daemon/errors.js';
import { logStrayErrors, stderrLine } from '../daemon/log.js';
import { CONTROL_ENV, runControlSocket } from '../daemon/control-path.js';
import type { Serving } from '../daemon/serve-tree.js';
import { BaseDir } from '../overlay/index.js';
import { RELAYED_SIGNALS, inTerminalForeground } from './signals.js';
import { startGate, type Gate } from './gate.js';
import { which } from '../fuse/programs.js';
import { STAGED_TREE_DIR, STAGING_MOUNT, checkTarget, mountSteps, planMounts } from './mounts.js';
import { STAGED_DEV_SCRATCH, STAGED_VFIO_DIR, devGroup, devOverlaySteps, devScratchDirs, vfioBindStep } from './dev-vfio.js';
import { EXIT_RUN_FAILED, VERIFY_SYSFS_ENV, signalStatus, type RunOptions } from './options.js';
import { STAGED_RUN_SCRATCH, UDEV_DATA, privateRunSteps, runScratchDirs } from './run-udev.js';
import { hostBindPaths, hostBindSteps, hostStageDirs, hostStagePaths, hostStageSteps } from './host-binds.js';
import { runScript, type ScriptStep } from './script.js';
import type { RunNamespace } from './namespace.js';

/** How long a forwarded SIGTERM/SIGHUP gives the command before SIGKILL. */
export const SIGNAL_GRACE_MS = 5000;
/** Bound on the teardown's plugin shutdown. */
const SHUTDOWN_BOUND_MS = 5000;

/**
 * Refuse to broadcast where the host's listeners would hear it: the network
 * namespace must be another than the caller's. Then bring its `lo` up (a new
 * one starts with `lo` down).
 */
async function checkNetwork(o: RunOptions, ns: RunNamespace): Promise<void> {
  if (!!o.udevBroadcast !== ns.privateNet) {
    // bin/mdevfs decided from the arguments before Node parsed them, and read them otherwise.
    throw new UserError(
      o.udevBroadcast
        ? 'internal error: udev broadcast asked for outside a private network namespace; not broadcasting (put -- before the command)'
        : 'internal error: the command would not have the host network (put -- before the command)',
    );
  }
  if (!o.udevBroadcast) return;
  const { loopbackUp } = await import('./loopback.js');
  try {
    await loopbackUp();
  } catch (e) {
    throw new UserError(`cannot bring up lo in the run's network namespace: ${errorMessage(e)}`);
  }
}

/** Run; resolves with the exit status (the caller exits with it). */
export async function runInner(o: RunOptions, ns: RunNamespace): Promise<number> {
  const log = (m: string) => stderrLine(m);
  const vlog = o.verbose ? log : () => {};

  let serving: Serving | undefined;
  let base: BaseDir | undefined;
  let phase: 'setup' | 'running' | 'teardown' = 'setup';
  let setupSignal: NodeJS.Signals | undefined;
  let graceTimer: NodeJS.Timeout | undefined;

  const [unshare, setpriv] = [which('unshare'), which('setpriv')];
  if (!unshare) throw new UserError('unshare not found (install util-linux)', EXIT_RUN_FAILED);
  if (!setpriv) vlog('mdevfs: setpriv not found: if this run is killed, the command keeps running');

  // The control socket's path goes in the command's environment, so `mdevfs ctl` finds this daemon (docs/control.md).
  const ctlSocket = runControlSocket();
  const env = { ...process.env, ...(o.udev ? VERIFY_SYSFS_ENV : {}), [CONTROL_ENV]: ctlSocket };
  let gate: Gate | undefined;
  let gateGone = false;
  let staged: string[];

  const onSignal = async (sig: NodeJS.Signals) => {
    // Before the command runs, any of them (a terminal's Ctrl-C too) ends the setup.
    if (phase === 'setup') {
      if (setupSignal) process.exit(signalStatus(sig)); // a second one: give up at once (the namespaces go with us)
      setupSignal = sig;
      return;
    }
    if (phase === 'teardown') process.exit(signalStatus(sig)); // the command is done: skip the rest of the teardown
    // A terminal's SIGINT/SIGHUP went to our whole process group, the command included.
    if (sig !== 'SIGTERM' && (await inTerminalForeground())) {
      vlog(`mdevfs: ${sig} from the terminal: the command has it too`);
      return;
    }
    vlog(`mdevfs: ${sig}: passing it on to the command`);
    await gate?.signal(sig);
    // SIGTERM and SIGHUP mean "stop": a command that ignores them is killed
    // after a grace period. SIGINT may rightly be handled without exiting.
    if (sig !== 'SIGINT') {
      graceTimer ??= setTimeout(() => {
        log(`mdevfs: the command did not exit within ${SIGNAL_GRACE_MS / 1000} s of ${sig}; killing it`);
        gate?.kill();
      }, SIGNAL_GRACE_MS);
    }
  };
  for (const sig of RELAYED_SIGNALS) process.on(sig, () => void onSignal(sig));

  const stopIfInterrupted = () => {
    if (setupSignal) throw new UserError(`interrupted by ${setupSignal}`);
  };

  const teardown = async () => {
    phase = 'teardown';
    if (graceTimer) clearTimeout(graceTimer);
    // The last removes must not reach the udev database or listeners any more.
    serving?.stopUdev();
    if (serving) {
      await Promise.race([
        serving.shutdown().catch(e => vlog(`mdevfs: shutdown: ${errorMessage(e)}`)),
        new Promise(r => setTimeout(r, SHUTDOWN_BOUND_MS).unref()),
      ]);
    }
  };

  // Every setup failure ends up in the one catch below, which prints its
  // message (a UserError's, mostly) as one "mdevfs: " line.
  try {
    // The host's sysfs, held open before anything covers /sys: the overlay's base.
    if (!o.bare) {
      try {
        base = BaseDir.open('/sys');
      } catch (e) {
        throw new UserError(`cannot open the host's /sys for the overlay (try --bare): ${errorMessage(e)}`);
      }
    }
    const dev = devGroup(STAGED_DEV_SCRATCH);
    const stagePaths = base ? hostStagePaths(base) : [];
    const stage = hostStageSteps(stagePaths);
    const first: ScriptStep[] = [
      ...mountSteps(STAGING_MOUNT),
      {
        argv: [
          'mkdir',
          '-p',
          STAGED_TREE_DIR,
          STAGED_VFIO_DIR,
          ...devScratchDirs(STAGED_DEV_SCRATCH),
          ...(o.udev ? runScratchDirs(STAGED_RUN_SCRATCH) : []),
          ...hostStageDirs(stagePaths),
        ],
        what: 'create the staging directories in /sys',
      },
      ...(await devOverlaySteps(STAGED_DEV_SCRATCH)),
      // Before the plugins load: the udev database lives there.
      ...(o.udev ? await privateRunSteps(STAGED_RUN_SCRATCH) : []),
      ...stage.steps,
      // Last: from here on every mount made here reaches the command's namespace (./gate.ts).
      { argv: ['mount', '--make-rshared', '/'], what: 'make the mounts of the run shared with the command' },
    ];
    // The daemon's modules load while the batch runs (a process of its own).
    const [, warnings, { serveTree }] = await Promise.all([
      checkNetwork(o, ns),
      runScript(first, [dev, ...stage.groups], base ? [base.fd] : []),
      import('../daemon/serve-tree.js'),
    ]);
    const devFailed = warnings.get(dev.name);
    if (devFailed) log(`mdevfs: no /dev/vfio in this run: ${devFailed}`);
    staged = stagePaths.filter((_, i) => !warnings.has(stage.groups[i]!.name));
    for (const g of stage.groups) {
      if (warnings.has(g.name)) vlog(`mdevfs: a host subtree is served through the overlay instead of bound: ${warnings.get(g.name)}`);
    }
    stopIfInterrupted();
    // The command's side, before the tree is mounted: it must not inherit /dev/fuse (./gate.ts).
    gate = startGate(o.command, env, unshare, setpriv);
    void gate.exited.then(() => (gateGone = true));

    // serveTree loads the plugins as mount does: the samples unless --driver or --config.
    serving = await serveTree(STAGED_TREE_DIR, {
      driver: o.driver,
      config: o.config,
      profile: o.profile,
      verbose: o.verbose,
      allowOther: o.allowOther,
      engine: o.engine,
      // The namespace is the safety net: its mounts die with this process.
      autoUnmount: false,
      callTimeout: o.callTimeout,
      vfioDir: STAGED_VFIO_DIR,
      uevents: o.uevents,
      udevBroadcast: !!o.udevBroadcast,
      controlSocket: ctlSocket,
      scenario: o.scenario,
      ...(o.udev ? { udevDatabase: UDEV_DATA } : {}),
      ...(base ? { overlay: base } : {}),
    });
    // From here on a stray exception is logged, not fatal (as in mount).
    logStrayErrors(o.verbose);
    stopIfInterrupted();

    // Before /sys is covered: the staged device files and host subtrees are reachable only until then.
    const treeDir = serving.mounted.mountpoint;
    const host = hostBindSteps(hostBindPaths(staged, serving.presenter.root), treeDir);
    const second: ScriptStep[] = [...(serving.vfio && !devFailed ? [vfioBindStep(serving.vfio.mounted.mountpoint)] : []), ...host.steps];
    for (const m of planMounts({ treeDir, keepEtc: o.keepEtc, extra: o.mounts })) {
      if (await checkTarget(m)) second.push(...mountSteps(m));
      else vlog(`mdevfs: ${m.target} does not exist; not mounting ${m.what}`);
    }
    const warned = await runScript(second, [dev, ...host.groups]);
    if (warned.has(dev.name)) log(`mdevfs: no /dev/vfio in this run: ${warned.get(dev.name)}`);
    for (const g of host.groups) {
      if (warned.has(g.name)) vlog(`mdevfs: a host subtree is served through the overlay instead of bound: ${warned.get(g.name)}`);
    }
    stopIfInterrupted();
    // unshare's own failure (its stderr is the gate's, /dev/null): say so, do not pass its status off as the command's.
    if (gateGone) throw new UserError(`could not start the command's pid namespace (unshare exited with status ${await gate!.exited})`);
    const n = serving.presenter.parentCount;
    vlog(
      `mdevfs: /sys is the mdevfs tree${base ? " over the host's" : ''} (profile ${serving.core.profile}, ${n} parent${n === 1 ? '' : 's'}); running ${o.command.join(' ')}`,
    );
  } catch (e) {
    const interrupted = setupSignal;
    if (!interrupted) log(`mdevfs: ${errorMessage(e)}`);
    gate?.cancel();
    await teardown();
    return interrupted ? signalStatus(interrupted) : EXIT_RUN_FAILED;
  }

  phase = 'running';
  const started = gate!;
  started.go();
  const status = await started.exited;
  await teardown();
  return status;
}
