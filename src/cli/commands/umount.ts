/**
 * `mdevfs umount <dir>`: stop the daemon serving <dir> (src/daemon/stop.ts)
 * and return once it has exited and the mount is gone.
 */
import type { Command } from 'commander';

export function registerUmount(program: Command): void {
  program
    .command('umount')
    .alias('unmount')
    .description('stop the mdevfs daemon serving <dir>: unmount, shut its plugins down, and wait until it has exited')
    .argument('<dir>', 'the mount point of an mdevfs mount (fuse.mdevfs in /proc/self/mountinfo)')
    .addHelpText(
      'after',
      `
The daemon started by mdevfs mount (in the foreground or with --background)
is sent SIGTERM: it unmounts <dir>, shuts its plugins down and exits; umount
returns once it has, with status 0 and nothing printed. A stale mount (its
daemon killed) is unmounted lazily. Exit status 1, with one line, when <dir>
is not a mount point, not an mdevfs mount, or the daemon does not stop
within 30 s.

Examples:
  mdevfs mount /tmp/sys --background && mdevfs umount /tmp/sys`,
    )
    .action(async (dir: string) => {
      // Loaded on use, as the daemon is (the CLI's start stays small for `run`).
      const { stopMount } = await import('../../daemon/stop.js');
      await stopMount(dir);
    });
}
