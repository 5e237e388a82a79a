/**
 * The mdevfs command line (bin/mdevfs → dist/cli/main.js).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError } from 'commander';
import { errorMessage, firstLine } from '../core/errno.js';
import { UserError } from '../daemon/errors.js';
import { stderrLine } from '../daemon/log.js';
import { commands } from './commands/index.js';

export function packageVersion(): string {
  const pkg = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../package.json');
  return (JSON.parse(readFileSync(pkg, 'utf8')) as { version: string }).version;
}

export function buildProgram(): Command {
  const program = new Command('mdevfs')
    .description('A FUSE-mounted virtual sysfs that emulates the Linux VFIO mediated device (mdev) framework')
    .version(packageVersion(), '-V, --version', 'print the version')
    .showHelpAfterError('(mdevfs <command> --help shows the usage)')
    .addHelpText(
      'after',
      `
Every command needs root. mdevfs <command> --help describes each one.

Examples:
  mdevfs mount /tmp/sys                          # the sample drivers; Ctrl-C unmounts
  mdevfs mount /tmp/sys --background --json      # for a test harness; returns once mounted
  mdevfs umount /tmp/sys
  mdevfs run -- mdevctl types                    # a command with the tree as its /sys
  mdevfs ctl --at /tmp/sys unplug mtty           # hot-unplug a parent of a running daemon
  mdevfs capture -o host.json                    # this host's mdev parents, for mount --config`,
    )
    .exitOverride();
  for (const register of commands) register(program);
  return program;
}

/** Run the CLI; resolves once the command's action has (a mount keeps the process alive afterwards). */
export async function main(argv: readonly string[] = process.argv): Promise<void> {
  // A reader that went away (EPIPE: `mdevfs --help | head`, a test harness
  // that stopped listening) must not take the process down: a short command
  // just ends, and a mount keeps serving.
  process.stdout.on('error', () => {});
  process.stderr.on('error', () => {});
  const program = buildProgram();
  try {
    await program.parseAsync([...argv]);
  } catch (e) {
    if (e instanceof CommanderError) {
      // commander already printed help, the version or its own one-line error.
      process.exitCode = e.exitCode;
      return;
    }
    // The one place a UserError is printed (src/daemon/errors.ts).
    if (e instanceof UserError) {
      for (const line of e.message.split('\n').filter(l => l.trim() !== '')) stderrLine(`mdevfs: ${line}`);
      process.exit(e.exitCode);
    }
    stderrLine(`mdevfs: ${firstLine(errorMessage(e))}`);
    if (process.env.MDEVFS_DEBUG && e instanceof Error && e.stack) stderrLine(e.stack);
    process.exit(1);
  }
}
