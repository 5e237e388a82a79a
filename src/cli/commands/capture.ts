/**
 * `mdevfs capture [--sysfs <root>] [-o <file>]`: describe a host's mdev tree
 * (a real /sys, or another mdevfs mount) as a declarative config, so
 * `mdevfs mount --config <file>` can emulate that host without its hardware.
 * The reading is src/config/capture.ts (`captureSysfs`); this is the command.
 */
import { randomBytes } from 'node:crypto';
import { rename, stat, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { type Command, Option } from 'commander';
import { firstLine } from '../../core/errno.js';
import { UserError } from '../../daemon/errors.js';
import { stderrLine } from '../../daemon/log.js';

interface CaptureCommandOptions {
  sysfs: string;
  output?: string;
}

async function isDir(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isDirectory();
  } catch {
    return false;
  }
}

export function registerCapture(program: Command): void {
  program
    .command('capture')
    .description("write a config (JSON) describing the mdev parents of a host's /sys, for mount --config")
    .addOption(new Option('--sysfs <root>', 'the sysfs tree to read (a real /sys, or an mdevfs mount)').default('/sys'))
    .addOption(new Option('-o, --output <file>', 'write the config to <file> instead of stdout ("-" is stdout)'))
    .addHelpText(
      'after',
      `
What is captured, per /sys/class/mdev_bus/<parent>: the parent's path,
subsystem, driver and IOMMU group links, its text identity files (vendor,
device, class, uevent, ...; not config/rom/resourceN), every type's name,
description, device_api and extra files, and one existing device's vendor
files. Capacity is written as model "fixed" with max = available_instances +
existing devices per type: a capture cannot tell a shared pool or a
one-type-at-a-time GPU from independent counts, so edit "capacity" if you
know the real rule (see src/config/README.md). Devices themselves are not captured.
Parents that are SR-IOV virtual functions are captured with their physical
function, as one "pciFunctions" entry (its sriov_* files, VF 0's files).

A tree without <root>/class/mdev_bus, or with no parents in it, is an error
(exit status 1, nothing written): a config needs at least one parent.

Examples:
  mdevfs capture -o host.json
  mdevfs capture --sysfs /mnt/mdevfs > host.json`,
    )
    .action(async (opts: CaptureCommandOptions) => {
      await captureCommand(opts);
    });
}

export async function captureCommand(opts: CaptureCommandOptions): Promise<void> {
  // Loaded on use: every other command starts without the config code.
  const { ConfigError, captureSysfs, formatConfig } = await import('../../config/index.js');
  const root = opts.sysfs;
  if (!(await isDir(root))) throw new UserError(`cannot capture ${root}: no such directory`);
  if (!(await isDir(path.join(root, 'class', 'mdev_bus')))) {
    throw new UserError(`no mdev parents under ${root} (is this a host with mdev support?)`);
  }

  let text: string;
  let parents: number;
  let types: number;
  try {
    const doc = await captureSysfs(root);
    // A PF's VF parents (pciFunctions) count as what they were: parents.
    const vfParents = (doc.pciFunctions ?? []).map(f => ({ n: f.sriov.numVfs ?? 0, types: f.sriov.vf.mdev?.types.length ?? 0 }));
    parents = doc.parents.length + vfParents.reduce((n, f) => n + f.n, 0);
    types = doc.parents.reduce((n, p) => n + p.types.length, 0) + vfParents.reduce((n, f) => n + f.n * f.types, 0);
    text = formatConfig(doc);
  } catch (e) {
    if (e instanceof ConfigError) throw new UserError(e.message);
    throw e;
  }

  const out = opts.output;
  if (out === undefined || out === '-') {
    process.stdout.write(text);
    return;
  }
  // Whole or not at all: a failed write leaves no half file behind.
  // An unguessable name, created afresh ('wx'): never written through a link planted there.
  const tmp = path.join(path.dirname(out), `.${path.basename(out)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    await writeFile(tmp, text, { flag: 'wx' });
    await rename(tmp, out);
  } catch (e) {
    await unlink(tmp).catch(() => {});
    const err = e as NodeJS.ErrnoException;
    const why =
      err.code === 'ENOENT'
        ? 'no such directory'
        : err.code === 'EACCES'
          ? 'permission denied'
          : err.code === 'EISDIR'
            ? 'is a directory'
            : firstLine(err.message);
    throw new UserError(`cannot write ${out}: ${why}${err.code ? ` (${err.code})` : ''}`);
  }
  stderrLine(
    `mdevfs: captured ${parents} parent${parents === 1 ? '' : 's'} (${types} type${types === 1 ? '' : 's'}) from ${root} to ${out}`,
  );
}
