/**
 * The inside of `mdevfs run`: PID 1 of a private mount + pid namespace (made
 * by unshare(1), see ./outer.ts). In order:
 *
 * 1. fork the command's process as a "gate" (sh waiting on a pipe), so it
 *    inherits none of the daemon's descriptors (libfuse's /dev/fuse is not
 *    close-on-exec);
 * 2. open the host's /sys (the overlay's base, unless --bare: docs/overlay.md),
 *    put a staging tmpfs over /sys, load the plugins and mount the tree on a
 *    directory in it (nothing is created on the host);
 * 3. put the VFIO device files at /dev/vfio (an overlay over /dev, see
 *    ./dev-vfio.ts), with udev a private /run with /run/udev (./run-udev.ts;
 *    for the broadcast, lo up first), bind the tree over /sys, a scratch tmpfs over
 *    /etc/mdevctl.d (unless --keep-etc), then any extra mounts (RunOptions.mounts);
 * 4. open the gate: the command runs with inherited stdio (and, with udev,
 *    SYSTEMD_DEVICE_VERIFY_SYSFS=0);
 * 5. when it exits: unmount, shut the plugins down, exit with its status
 *    (128+signo for a signal).
 *
 * Being PID 1 is what makes cleanup unconditional: when this process exits,
 * for any reason including SIGKILL, the kernel kills every other process in
 * the namespace, and the namespace's mounts go with the last of them.
 *
 * Rule of this file: no synchronous fs call on a path after the mount. /sys
 * is our own FUSE tree, and a synchronous call into it from here deadlocks.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fstatSync } from 'node:fs';
import { mkdir, readlink } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { errorMessage } from '../core/errno.js';
import { UserError } from '../daemon/errors.js';
import { logStrayErrors, stderrLine } from '../daemon/log.js';
import { CONTROL_ENV, runControlSocket } from '../daemon/control-path.js';
import { serveTree, type Serving } from '../daemon/serve-tree.js';
import { InnerControl, RELAYED_SIGNALS } from './control.js';
import { STAGED_TREE_DIR, STAGING_MOUNT, applyMount, planMounts, removeMount } from './mounts.js';
import { STAGED_DEV_SCRATCH, STAGED_VFIO_DIR, mountDevVfio, type DevVfio } from './dev-vfio.js';
import { EXIT_NOT_FOUND, EXIT_RUN_FAILED, VERIFY_SYSFS_ENV, signalStatus, type NamespaceMount, type RunOptions } from './options.js';
import { STAGED_RUN_SCRATCH, UDEV_DATA, mountPrivateRun, type PrivateRun } from './run-udev.js';
import { loopbackUp } from './loopback.js';
import { BaseDir } from '../overlay/index.js';
import { bindHostPaths, hostBindPaths } from './host-binds.js';

/** How long a forwarded SIGTERM/SIGHUP gives the command before SIGKILL. */
export const SIGNAL_GRACE_MS = 5000;
/** Bound on the teardown's plugin shutdown. */
const SHUTDOWN_BOUND_MS = 5000;

/**
 * The gate: `sh -c` that blocks reading its fd 3, then closes it (and fd 4,
 * the inherited copy of the real stderr) and execs the command (same pid).
 * EOF instead of "go" makes it exit 125 unseen.
 */
const GATE_SCRIPT = [
  'read _ <&3 || exit ' + EXIT_RUN_FAILED,
  'exec 3<&- 4>&-',
  `command -v -- "$1" >/dev/null 2>&1 || { printf '%s\\n' "mdevfs: $1: command not found" >&2; exit ${EXIT_NOT_FOUND}; }`,
  'exec "$@"',
].join('\n');

function startGate(
  command: readonly string[],
  stderrFd: number | undefined,
  env: NodeJS.ProcessEnv,
): { child: ChildProcess; go(): void; cancel(): void } {
  const child = spawn('/bin/sh', ['-c', GATE_SCRIPT, 'mdevfs', ...command], {
    stdio: ['inherit', 'inherit', stderrFd ?? 'inherit', 'pipe'],
    env,
  });
  const ctl = child.stdio[3] as Writable | null;
  ctl?.on('error', () => {
    /* the gate is gone; its exit says why */
  });
  return {
    child,
    go: () => {
      ctl?.end('go\n');
    },
    cancel: () => {
      ctl?.destroy();
    },
  };
}

/** `fd` if it is open, else undefined. */
function usableFd(fd: number | undefined): number | undefined {
  if (fd === undefined) return undefined;
  try {
    fstatSync(fd);
    return fd;
  } catch {
    return undefined;
  }
}

/**
 * Refuse to broadcast where the host's listeners would hear it: the network
 * namespace must be another than the caller's. Then bring its `lo` up (a new
 * one starts with `lo` down).
 */
async function checkPrivateNetwork(callerNetns: string | undefined): Promise<void> {
  const own = await readlink('/proc/self/ns/net');
  if (!callerNetns || own === callerNetns) {
    throw new UserError('internal error: udev broadcast asked for outside a private network namespace; not broadcasting');
  }
  try {
    await loopbackUp();
  } catch (e) {
    throw new UserError(`cannot bring up lo in the run's network namespace: ${errorMessage(e)}`);
  }
}

/**
 * Run; resolves with the exit status. The caller reports it on the control
 * channel and exits with it (see inner-main.ts).
 */
export async function runInner(o: RunOptions): Promise<number> {
  const log = (m: string) => stderrLine(m);
  const vlog = o.verbose ? log : () => {};

  let serving: Serving | undefined;
  let devVfio: DevVfio | undefined;
  let privateRun: PrivateRun | undefined;
  let base: BaseDir | undefined;
  const done: NamespaceMount[] = [];
  let child: ChildProcess | undefined;
  let phase: 'setup' | 'running' | 'teardown' = 'setup';
  let setupSignal: NodeJS.Signals | undefined;
  let graceTimer: NodeJS.Timeout | undefined;

  let resolveChild!: (status: number) => void;
  const childDone = new Promise<number>(r => {
    resolveChild = r;
  });

  const control = new InnerControl(o.statusFd);
  const exitNow = (status: number): never => {
    control.exiting(status);
    process.exit(status);
  };
  // The same signal twice within 250 ms counts once (e.g. a group-wide
  // SIGTERM that reaches this process directly and through the outer).
  const lastSeen = new Map<string, number>();
  const isEcho = (sig: NodeJS.Signals) => {
    const now = Date.now();
    const echo = now - (lastSeen.get(sig) ?? -Infinity) < 250;
    lastSeen.set(sig, now);
    return echo;
  };
  const onSignal = (sig: NodeJS.Signals, relayed: boolean) => {
    if (isEcho(sig)) return;
    if (phase === 'setup') {
      if (setupSignal) exitNow(signalStatus(sig)); // a second one: give up at once (the namespace goes with us)
      setupSignal = sig;
      return;
    }
    if (phase === 'teardown') {
      exitNow(signalStatus(sig)); // a second one: skip the rest of the teardown
    }
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    // SIGINT and SIGHUP sent to us directly come from the terminal (Ctrl-C,
    // hangup), which has sent them to the command as well: only relayed ones
    // are passed on. SIGTERM is never the terminal's.
    if (!relayed && sig !== 'SIGTERM') {
      vlog(`mdevfs: ${sig} from the terminal: the command has it too`);
      return;
    }
    vlog(`mdevfs: ${sig}: passing it on to the command`);
    try {
      child.kill(sig);
    } catch {
      /* gone */
    }
    // SIGTERM and SIGHUP mean "stop": a command that ignores them is killed
    // after a grace period. SIGINT may rightly be handled without exiting.
    if (sig !== 'SIGINT') {
      const cmd = child;
      graceTimer ??= setTimeout(() => {
        log(`mdevfs: the command did not exit within ${SIGNAL_GRACE_MS / 1000} s of ${sig}; killing it`);
        try {
          cmd.kill('SIGKILL');
        } catch {
          /* gone */
        }
      }, SIGNAL_GRACE_MS);
    }
  };
  for (const sig of RELAYED_SIGNALS) process.on(sig, () => onSignal(sig, false));
  control.onSignal(sig => onSignal(sig, true));

  const teardown = async () => {
    phase = 'teardown';
    if (graceTimer) clearTimeout(graceTimer);
    // Before the private /run goes: the last removes must not reach the host's.
    serving?.stopUdev();
    await devVfio?.remove();
    await privateRun?.remove();
    for (const m of [...done].reverse()) {
      if (!(await removeMount(m))) vlog(`mdevfs: could not unmount ${m.target} (it goes with the namespace)`);
    }
    if (serving) {
      // With /sys uncovered again, the tree's mount point is reachable; the
      // staging tmpfs under it is left to the namespace.
      await serving.mounted.unmount();
      await Promise.race([
        serving.shutdown().catch(e => vlog(`mdevfs: shutdown: ${errorMessage(e)}`)),
        new Promise(r => setTimeout(r, SHUTDOWN_BOUND_MS).unref()),
      ]);
    }
  };

  // The command's process is forked now, before the tree is mounted, so it
  // does not inherit the daemon's /dev/fuse descriptor (libfuse opens it
  // without O_CLOEXEC). It waits on fd 3 until the mounts are in place.
  // The control socket's path goes in the command's environment, so `mdevfs ctl` finds this daemon (docs/control.md).
  const ctlSocket = runControlSocket();
  const env = { ...process.env, ...(o.udev ? VERIFY_SYSFS_ENV : {}), [CONTROL_ENV]: ctlSocket };
  const gate = startGate(o.command, usableFd(o.stderrFd), env);
  gate.child.on('error', e => {
    log(`mdevfs: cannot start /bin/sh for the command: ${e.message}`);
    resolveChild(EXIT_RUN_FAILED);
  });

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
    // Stage: a tmpfs over /sys holding the FUSE mount point (nothing on the host).
    await applyMount(STAGING_MOUNT);
    await mkdir(STAGED_TREE_DIR);
    await mkdir(STAGED_VFIO_DIR);
    await mkdir(STAGED_DEV_SCRATCH);
    if (o.udevBroadcast) await checkPrivateNetwork(o.callerNetns);
    // Before the plugins load: the udev database lives there.
    if (o.udev) {
      try {
        privateRun = await mountPrivateRun(STAGED_RUN_SCRATCH);
      } catch (e) {
        throw new UserError(`cannot make the private /run/udev: ${errorMessage(e)}`);
      }
    }
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
    // Before /sys is covered: the staged device files are reachable only until then.
    if (serving.vfio) {
      try {
        devVfio = await mountDevVfio(serving.vfio.mounted.mountpoint, STAGED_DEV_SCRATCH);
      } catch (e) {
        log(`mdevfs: no /dev/vfio in this run: ${errorMessage(e)}`);
      }
    }
    for (const m of planMounts({ treeDir: serving.mounted.mountpoint, keepEtc: o.keepEtc, extra: o.mounts })) {
      if (setupSignal) throw new UserError(`interrupted by ${setupSignal}`);
      if (await applyMount(m)) done.push(m);
      else vlog(`mdevfs: ${m.target} does not exist; not mounting ${m.what}`);
    }
    if (setupSignal) throw new UserError(`interrupted by ${setupSignal}`);
    if (base) {
      // Base reads go through the descriptor to the host's sysfs, never through /sys.
      const failed = await bindHostPaths(base, hostBindPaths(base, serving.presenter.root));
      if (failed) vlog(`mdevfs: a host subtree is served through the overlay instead of bound: ${failed}`);
    }
    const n = serving.presenter.parentCount;
    vlog(
      `mdevfs: /sys is the mdevfs tree${base ? " over the host's" : ''} (profile ${serving.core.profile}, ${n} parent${n === 1 ? '' : 's'}); running ${o.command.join(' ')}`,
    );
  } catch (e) {
    const interrupted = setupSignal;
    if (!interrupted) log(`mdevfs: ${errorMessage(e)}`);
    gate.cancel();
    await teardown();
    return interrupted ? signalStatus(interrupted) : EXIT_RUN_FAILED;
  }

  phase = 'running';
  control.started();
  child = gate.child;
  child.on('exit', (code, signal) => {
    resolveChild(code ?? (signal ? signalStatus(signal) : EXIT_RUN_FAILED));
  });
  if (child.exitCode !== null || child.signalCode !== null) {
    // The gate died during setup (killed from outside): nothing to run.
    resolveChild(child.exitCode ?? signalStatus(child.signalCode!));
  }
  gate.go();

  const status = await childDone;
  await teardown();
  return status;
}
