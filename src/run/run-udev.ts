/**
 * A private /run for a run with udev: the command sees the host's /run
 * entries, each bound back in place (so sockets such as D-Bus's still
 * connect; an overlay would break them), on a fresh tmpfs, in which a new
 * top-level entry lands privately, and a private /run/udev in place of the
 * host's (if any):
 *
 * - `/run/udev/control`: libudev's monitor joins no netlink group unless it
 *   exists (systemd device-monitor.c device_monitor_new_full(): "The udev
 *   service seems not to be active"; only access(F_OK) is checked), and
 *   `udevadm settle` returns at once when it exists and nothing is queued;
 * - `/run/udev/data/`: the udev database (the daemon keeps it: src/udev/database.ts).
 *
 * Made by one batch of mount(8) steps (./script.ts); nothing is unmounted,
 * the namespace takes it all.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { shQuote, type ScriptStep } from './script.js';

export const RUN = '/run';
export const RUN_UDEV = '/run/udev';
export const UDEV_CONTROL = '/run/udev/control';
export const UDEV_DATA = '/run/udev/data';
/** In the run's staging tmpfs (see ./mounts.ts): where the host's /run stays reachable. */
export const STAGED_RUN_SCRATCH = '/sys/mdevfs-run';

/** A path as an fstab field (fstab(5): spaces, tabs, newlines and backslashes octal-escaped). */
function fstabField(p: string): string {
  return p.replace(/[\s\\]/g, c => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);
}

/** The directory the /run steps need in the staging tmpfs (made with the run's other staging directories). */
export const runScratchDirs = (scratch: string): string[] => [path.join(scratch, 'run')];

/**
 * The steps that put the private /run with its /run/udev in place (reads the
 * host's /run first). The host's entries are bound back by one `mount -a`
 * over an fstab written in the staging tmpfs (`x-mount.mkdir` makes the
 * directories), not a mount(8) each: a process each was most of this.
 */
export async function privateRunSteps(scratch: string): Promise<ScriptStep[]> {
  const old = path.join(scratch, 'run');
  const fstab = path.join(scratch, 'fstab');
  const entries = (await fsp.readdir(RUN, { withFileTypes: true })).filter(e => e.name !== 'udev');
  const mode = (await fsp.stat(RUN)).mode & 0o7777;
  const steps: ScriptStep[] = [
    { argv: ['mount', '--rbind', RUN, old], what: `bind ${RUN} to ${old}` },
    { argv: ['mount', '-t', 'tmpfs', '-o', `mode=${mode.toString(8)}`, 'mdevfs-run', RUN], what: `put a tmpfs over ${RUN}` },
    { argv: ['mkdir', '-p', RUN_UDEV, UDEV_DATA], what: `create ${UDEV_DATA}` },
  ];
  const lines: string[] = [];
  for (const e of entries) {
    const from = path.join(old, e.name);
    const to = path.join(RUN, e.name);
    if (e.isSymbolicLink()) {
      steps.push({ argv: ['ln', '-s', await fsp.readlink(path.join(RUN, e.name)), to], what: `create ${to}` });
      continue;
    }
    // A mount point of the entry's kind: x-mount.mkdir for a directory, an empty file for the rest.
    if (!e.isDirectory()) steps.push({ sh: `: >> ${shQuote(to)}`, what: `create ${to}` });
    lines.push(`${fstabField(from)} ${fstabField(to)} none rbind${e.isDirectory() ? ',x-mount.mkdir' : ''} 0 0`);
  }
  if (lines.length > 0) {
    steps.push(
      { sh: `printf '%s\\n' ${lines.map(shQuote).join(' ')} > ${shQuote(fstab)}`, what: `write ${fstab}` },
      { argv: ['mount', '-a', '-T', fstab], what: `bind the entries of ${RUN} again` },
    );
  }
  steps.push({ sh: `(umask 077 && : > ${shQuote(UDEV_CONTROL)})`, what: `create ${UDEV_CONTROL}` });
  return steps;
}
