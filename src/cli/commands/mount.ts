/**
 * `mdevfs mount <dir>`: load the vendor drivers into a core, present it as a
 * sysfs tree, mount that in the foreground, and unmount on SIGINT/SIGTERM
 * or when the processes that started it go away. With `--background`, the
 * same command is started detached (src/daemon/background.ts) and this one
 * returns once the tree is mounted. The daemon itself is src/daemon/.
 *
 * With `--vfio-dir <dir2>` the same daemon serves a second mount: the VFIO
 * device files (src/devfs/vfio.ts), `<dir2>/<N>` per IOMMU group. With
 * `--uevents <file>` every uevent is written there as a JSON line.
 */
import { closeSync, fstatSync, writeSync } from 'node:fs';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { startDetached, type ReadyInfo } from '../../daemon/background.js';
import { UserError } from '../../daemon/errors.js';
import { createLogger, LOG_LEVELS, type LogLevel } from '../../daemon/log.js';
import { canonicalDir, openAppend, resolveOwnFile } from '../../daemon/own-files.js';
import { addServeOptions, type SharedServeOptions } from '../serve-options.js';

interface MountCommandOptions extends SharedServeOptions {
  vfioDir?: string;
  overlay?: string;
  autoUnmount: boolean;
  ctl: boolean;
  background?: boolean;
  json?: boolean;
  readyFd?: number;
  pidfile?: string;
  logLevel: LogLevel;
  logFile?: string;
  /** Internal: this is the daemon `--background` started; report readiness on this fd. */
  detached?: number;
}

function fdNumber(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected a file descriptor number');
  return n;
}

export function registerMount(program: Command): void {
  const cmd = program
    .command('mount')
    .description(
      'mount the emulated /sys at <dir>; in the foreground until SIGINT/SIGTERM or until the process that started it exits, or with --background as a daemon',
    )
    .argument('<dir>', 'an existing, empty directory');
  addServeOptions(cmd)
    .option(
      '--vfio-dir <dir>',
      'also mount the VFIO device files there (an existing, empty directory): <dir>/<N> opens the mediated device of IOMMU group N; read/write at region offsets (index << 40)',
    )
    .option(
      '--overlay <base>',
      'merge the tree over the directory <base> (e.g. a copy of a real /sys; docs/overlay.md): its entries show where the tree has none, read-only (EROFS); by default the bare tree',
    )
    .option('--no-ctl', 'serve no control socket (docs/control.md; by default `mdevfs ctl --at <dir>` reaches this daemon)')
    .option(
      '--no-auto-unmount',
      'do not unmount if the daemon dies (no watchdog, no libfuse auto_unmount: a crash leaves a stale mount; for tests)',
    )
    .option(
      '-b, --background',
      'start the daemon detached and exit 0 once the tree is mounted (non-zero with its error if it fails); stop it with mdevfs umount <dir>',
    )
    .option('--json', 'print the ready line as one JSON object: {"mountpoint","pid","profile","parents","vfioDir"}')
    .addOption(
      new Option('--ready-fd <n>', 'once mounted, also write the JSON ready line to file descriptor <n> and close it').argParser(fdNumber),
    )
    .option('--pidfile <file>', "once mounted, write the daemon's pid to <file> (replaced atomically; removed when the daemon exits)")
    .addOption(new Option('--log-level <level>', 'the least severe messages logged (-v is debug)').choices(LOG_LEVELS).default('info'))
    .option('--log-file <file>', 'append log lines to <file> (created 0600; not a symbolic link) instead of stderr')
    .addOption(new Option('--detached <fd>').argParser(fdNumber).hideHelp())
    .addHelpText(
      'after',
      `
Output: once the tree is mounted, one line on stdout, "mdevfs: mounted <dir>
(profile <p>, <n> parents)", or with --json the same facts as JSON (with the
daemon's pid). Messages go to stderr (or --log-file), each with its ISO time
and level; failed requests show errno names (write /… → EINVAL) at debug.

Exit: 0 after a clean unmount (a signal, mdevfs umount, fusermount -u, or the
starting process going away); 1 with one "mdevfs: <reason>" line if the tree
cannot be mounted. In the foreground the daemon watches every process above
it (npx, sh, a test runner) and unmounts when one exits; --background is for
a daemon that must outlive the command that started it.

Examples:
  mdevfs mount /tmp/sys                                  # the sample drivers, Ctrl-C unmounts
  mdevfs mount /tmp/sys --driver examples/nvidia-vgpu.ts --vfio-dir /tmp/vfio
  mdevfs mount /tmp/sys --config host.json --profile legacy
  mdevfs mount /tmp/sys --background --json --log-file /var/log/mdevfs.log
  mdevfs umount /tmp/sys`,
    )
    .action(async (dir: string, opts: MountCommandOptions) => {
      await mountCommand(dir, opts);
    });
}

/** Fail before mounting if `--ready-fd` names no open descriptor. */
function checkFd(fd: number): void {
  try {
    fstatSync(fd);
  } catch {
    throw new UserError(`--ready-fd ${fd} is not an open file descriptor`);
  }
}

function writeReady(fd: number, info: ReadyInfo): void {
  try {
    writeSync(fd, JSON.stringify(info) + '\n');
  } finally {
    closeSync(fd);
  }
}

/** The ready line on stdout (what scripts wait for), and on --ready-fd. */
function announce(info: ReadyInfo, opts: MountCommandOptions): void {
  const n = info.parents;
  const devices = info.vfioDir ? `, VFIO device files at ${info.vfioDir}` : '';
  process.stdout.write(
    opts.json
      ? JSON.stringify(info) + '\n'
      : `mdevfs: mounted ${info.mountpoint} (profile ${info.profile}, ${n} parent${n === 1 ? '' : 's'})${devices}\n`,
  );
  if (opts.readyFd !== undefined) writeReady(opts.readyFd, info);
}

async function mountCommand(dir: string, opts: MountCommandOptions): Promise<void> {
  if (opts.readyFd !== undefined && opts.detached === undefined) checkFd(opts.readyFd);
  if (opts.background && opts.detached === undefined) {
    // The daemon gets this command's own arguments; it ignores --background and --ready-fd (ours to answer).
    const args = process.argv.slice(process.argv.indexOf('mount', 2) + 1);
    announce(await startDetached(process.argv[1]!, args), opts);
    return;
  }

  const mountpoints = [await canonicalDir(dir), opts.vfioDir === undefined ? undefined : await canonicalDir(opts.vfioDir)];
  const pidfile = opts.pidfile === undefined ? undefined : await resolveOwnFile('--pidfile', opts.pidfile, mountpoints);
  const logFd =
    opts.logFile === undefined ? undefined : openAppend('--log-file', await resolveOwnFile('--log-file', opts.logFile, mountpoints));
  const logger = createLogger({ level: opts.verbose ? 'debug' : opts.logLevel, timestamps: true, fd: logFd });
  // Loaded here, not at start: `mdevfs run`'s outer process never needs the daemon.
  const { serveInForeground } = await import('../../daemon/foreground.js');
  const { processStartTime, serverFsname } = await import('../../fuse/servers.js');
  const { mountControlSocket } = await import('../../daemon/control-path.js');
  const serving = await serveInForeground(dir, {
    ...opts,
    logger,
    // How mdevfs umount finds this daemon (src/daemon/stop.ts).
    fsname: serverFsname(process.pid, (await processStartTime(process.pid)) ?? '0'),
    pidfile,
    exitWithParent: opts.detached === undefined,
    controlSocket: opts.ctl ? mountControlSocket : undefined,
  });
  const info: ReadyInfo = {
    mountpoint: serving.mounted.mountpoint,
    pid: process.pid,
    profile: serving.core.profile,
    parents: serving.presenter.parentCount,
    ...(serving.vfio ? { vfioDir: serving.vfio.mounted.mountpoint } : {}),
  };
  if (opts.detached === undefined) return announce(info, opts);
  try {
    writeReady(opts.detached, info);
  } catch {
    await serving.stop('the command that started mdevfs in the background went away before the tree was mounted');
  }
}
