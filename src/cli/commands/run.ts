/**
 * `mdevfs run [options] -- <command> [args...]`: run a real, unmodified client
 * (mdevctl, a Go tool, a script) with the emulated tree as its /sys, in a
 * private mount + pid namespace that vanishes with the run. See src/run/.
 */
import path from 'node:path';
import type { Command } from 'commander';
import type { RunOptions } from '../../run/options.js';
import { addServeOptions, type SharedServeOptions } from '../serve-options.js';

interface RunCommandOptions extends SharedServeOptions {
  keepEtc?: boolean;
  /** false with --no-udev. */
  udev: boolean;
  hostNetwork?: boolean;
  bare?: boolean;
}

export function registerRun(program: Command): void {
  // Options after the command's name belong to the command (passThroughOptions
  // needs this on the parent; mdevfs has no program-level options besides -V/-h).
  program.enablePositionalOptions();
  const cmd = program
    .command('run')
    .description(
      "run a command with the emulated tree merged over the host's /sys (a scratch /etc/mdevctl.d, the VFIO device files at /dev/vfio, and udev's events and files), in private mount, pid and network namespaces; exits with the command's status",
    )
    .usage('[options] -- <command> [args...]')
    .argument('<command...>', 'the command and its arguments')
    .passThroughOptions();
  addServeOptions(cmd)
    .option(
      '--bare',
      "the emulated tree alone as /sys, without the host's entries (no CPUs, network devices or DMI; what mdevfs run gave before the overlay)",
    )
    .option('--keep-etc', "do not hide the host's /etc/mdevctl.d behind a scratch tmpfs (mdevctl define then writes to the host)")
    .option(
      '--no-udev',
      'no udev emulation: no uevents on the udev netlink group, no private /run/udev, no SYSTEMD_DEVICE_VERIFY_SYSFS=0 (libudev and libvirt then see no mdev device); the command keeps the host network',
    )
    .option(
      '--host-network',
      "keep the host's network namespace (by default the command has only its own loopback); udev events are then not broadcast (the host's listeners would hear them), while /run/udev and SYSTEMD_DEVICE_VERIFY_SYSFS=0 stay",
    )
    .addHelpText(
      'after',
      `
/sys is the host's real sysfs with the emulated entries merged in
(docs/overlay.md): where a name is in both, the emulated one wins; the
host's entries read live and refuse every change (EROFS); /sys/class/mdev_bus
and /sys/bus/mdev are the emulator's alone. --bare gives the emulated tree only.

Exit status: the command's (128+N if signal N ended it); 125 if mdevfs run
itself failed, 126/127 if the command could not be executed / was not found.
Needs root (mount namespaces) and unshare(1) from util-linux.

udev (unless --no-udev): every uevent is multicast as udevd would, on the
udev netlink group, from a private network namespace: the command has only
a loopback interface (lo, up) and no route to the host's network; use
--host-network for a command that needs it (events are then not broadcast).
/run is a tmpfs with the host's entries bound back and a private /run/udev
(control file, database); SYSTEMD_DEVICE_VERIFY_SYSFS=0 is set for the
command, which systemd's libudev needs to accept a /sys that is not sysfs
(sudo and setuid programs drop it from the environment).

Example:
  mdevfs run -- mdevctl types
  mdevfs run --driver examples/nvidia-vgpu.ts -- sh -c 'mdevctl start -p 0000:3b:00.0 -t nvidia-230 && mdevctl list'`,
    )
    .action(async (command: string[], opts: RunCommandOptions) => {
      const run: RunOptions = {
        driver: opts.driver,
        config: opts.config.map(f => path.resolve(f)),
        profile: opts.profile,
        keepEtc: !!opts.keepEtc,
        verbose: !!opts.verbose,
        allowOther: !!opts.allowOther,
        ...(opts.engine ? { engine: opts.engine } : {}),
        callTimeout: opts.callTimeout,
        mounts: [],
        udev: opts.udev,
        udevBroadcast: opts.udev && !opts.hostNetwork,
        bare: !!opts.bare,
        ...(opts.uevents !== undefined ? { uevents: path.resolve(opts.uevents) } : {}),
        ...(opts.scenario !== undefined ? { scenario: path.resolve(opts.scenario) } : {}),
        command,
      };
      // Loaded here, not at start: only what this kind of start needs.
      const { startedAsRunDaemon } = await import('../../run/namespace.js');
      if (startedAsRunDaemon()) {
        // This process is the run's daemon (bin/mdevfs started it so): src/run/inner.ts.
        const { runAsDaemon } = await import('../../run/daemon-main.js');
        process.exitCode = await runAsDaemon(run);
        return;
      }
      const { runOuter } = await import('../../run/outer.js');
      const args = process.argv.slice(process.argv.indexOf('run', 2) + 1);
      process.exitCode = await runOuter(args, { command, privateNet: !!run.udevBroadcast });
    });
}
