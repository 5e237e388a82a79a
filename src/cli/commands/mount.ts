/**
 * `mdevfs mount <dir>`: load the vendor drivers into a core, present it as a
 * sysfs tree, mount that in the foreground, and unmount on SIGINT/SIGTERM.
 * The daemon itself is src/daemon/; this is the command.
 *
 * With `--vfio-dir <dir2>` the same daemon serves a second mount: the VFIO
 * device files (src/devfs/vfio.ts), `<dir2>/<N>` per IOMMU group. With
 * `--uevents <file>` every uevent is written there as a JSON line.
 */
import type { Command } from 'commander';
import { addServeOptions, type SharedServeOptions } from '../serve-options.js';

interface MountCommandOptions extends SharedServeOptions {
  vfioDir?: string;
  autoUnmount: boolean;
}

export function registerMount(program: Command): void {
  const cmd = program
    .command('mount')
    .description('mount the emulated /sys at <dir> (in the foreground; SIGINT/SIGTERM unmounts)')
    .argument('<dir>', 'an existing, empty directory');
  addServeOptions(cmd)
    .option(
      '--vfio-dir <dir>',
      'also mount the VFIO device files there (an existing, empty directory): <dir>/<N> opens the mediated device of IOMMU group N; read/write at region offsets (index << 40)',
    )
    .option('--no-auto-unmount', 'do not ask libfuse to unmount if the daemon dies (leaves a stale mount on a crash; for tests)')
    .action(async (dir: string, opts: MountCommandOptions) => {
      await mountCommand(dir, opts);
    });
}

/** Serve until a signal; the ready line on stdout is what scripts (and the tests) wait for. */
async function mountCommand(dir: string, opts: MountCommandOptions): Promise<void> {
  // Loaded here, not at start: `mdevfs run`'s outer process never needs the daemon.
  const { serveInForeground } = await import('../../daemon/foreground.js');
  const serving = await serveInForeground(dir, opts);
  const n = serving.presenter.parentCount;
  const devices = serving.vfio ? `, VFIO device files at ${serving.vfio.mounted.mountpoint}` : '';
  process.stdout.write(
    `mdevfs: mounted ${serving.mounted.mountpoint} (profile ${serving.core.profile}, ${n} parent${n === 1 ? '' : 's'})${devices}\n`,
  );
}
