/**
 * Every subcommand, one file each. To add one (e.g. `run`, `capture`): write
 * src/cli/commands/<name>.ts exporting `register<Name>(program)` and list it here.
 */
import type { Command } from 'commander';
import { registerMount } from './mount.js';
import { registerRun } from './run.js';
import { registerCapture } from './capture.js';
import { registerCtl } from './ctl.js';
import { registerUmount } from './umount.js';

export const commands: Array<(program: Command) => void> = [registerMount, registerUmount, registerRun, registerCapture, registerCtl];
