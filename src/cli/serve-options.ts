/**
 * The options `mount` and `run` share: which drivers to load, which kernel to
 * present, and how to serve the tree. One definition, so the two commands
 * cannot drift apart.
 */
import { type Command, InvalidArgumentError, Option } from 'commander';
import type { ServeOptions } from '../daemon/options.js';
import type { EngineName } from '../fuse/engines.js';

/** What the flags below parse into: the daemon options they set (the repeatable ones default to []). */
export interface SharedServeOptions extends Pick<
  ServeOptions,
  'profile' | 'verbose' | 'allowOther' | 'callTimeout' | 'uevents' | 'scenario'
> {
  engine?: EngineName;
  driver: string[];
  config: string[];
}

/** commander accumulator for repeatable options. */
function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('expected a positive integer (milliseconds)');
  return n;
}

export function addServeOptions(cmd: Command): Command {
  return cmd
    .addOption(
      new Option(
        '-d, --driver <file|module>',
        'a vendor driver: a .ts/.js file, or a module name resolved from the current directory, whose default export is a VendorPlugin or an array of them (repeatable)',
      )
        .argParser(collect)
        .default([], 'the sample drivers mtty, mdpy, mbochs, unless --config is given'),
    )
    .addOption(
      new Option(
        '-c, --config <file>',
        'a declarative vendor config (JSON, see src/config/README.md; `mdevfs capture` writes one); repeatable, and combines with --driver',
      )
        .argParser(collect)
        .default([], 'none'),
    )
    .addOption(new Option('-p, --profile <profile>', 'which kernel to present').choices(['modern', 'legacy']).default('modern'))
    .addOption(
      new Option(
        '--engine <engine>',
        'how the tree is served (docs/fuse.md#engines): kernel speaks the FUSE protocol on /dev/fuse itself (root only), fuse-native uses libfuse 2',
      )
        .choices(['kernel', 'fuse-native'] satisfies EngineName[])
        .default(undefined, '$MDEVFS_ENGINE, else kernel as root and fuse-native otherwise'),
    )
    .option('-v, --verbose', 'log plugin messages, uevents and failed requests to stderr')
    .option('--allow-other', 'let users other than root use the tree (allow_other,default_permissions)')
    .option('--call-timeout <ms>', 'bound on every plugin callback and attribute show/store', positiveInt, 5000)
    .option('--scenario <file>', 'play the control requests of this JSON file, each at its time after the mount (docs/control.md)')
    .option(
      '--uevents <file>',
      'write every uevent to <file> (created or truncated; a FIFO is appended to), one JSON line each, keys in kernel order',
    );
}
