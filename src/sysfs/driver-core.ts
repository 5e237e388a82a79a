/**
 * The generic files the driver core gives every device, whatever its bus or
 * class: `power/` (drivers/base/power/sysfs.c, runtime PM never enabled) and
 * a class char device's `dev` and `subsystem` (device_add →
 * device_create_file(dev_attr_dev)). Its `uevent` is uevent-files.ts's.
 */
import { MdevError } from '../core/errno.js';
import type { AttrOps, KDir } from '../kernfs/index.js';
import type { UeventFiles } from './uevent-files.js';

/** An attribute whose content never changes. */
export const constant = (text: string): AttrOps => ({ show: () => text });

/** The written text without one trailing newline (sysfs_streq's view of a word). */
export function writtenWord(buf: Buffer): string {
  const s = buf.toString('latin1');
  return s.endsWith('\n') ? s.slice(0, -1) : s;
}

/** power/ of a device whose runtime PM is never enabled. */
export function addPower(dir: KDir): KDir {
  const power = dir.mkdir('power');
  let control = 'auto';
  power.attr('autosuspend_delay_ms', 0o644, {
    show: () => {
      throw new MdevError('EIO');
    },
    store: () => {
      throw new MdevError('EIO');
    },
  });
  power.attr('control', 0o644, {
    show: () => `${control}\n`,
    store: d => {
      const word = writtenWord(d);
      if (word !== 'auto' && word !== 'on') throw new MdevError('EINVAL');
      control = word;
    },
  });
  power.attr('runtime_active_time', 0o444, constant('0\n'));
  power.attr('runtime_status', 0o444, constant('unsupported\n'));
  power.attr('runtime_suspended_time', 0o444, constant('0\n'));
  return power;
}

/** A class device with a devt: dev, uevent (MAJOR, MINOR, DEVNAME), subsystem, power/. */
export function addCharDevFiles(
  dir: KDir,
  major: number,
  minor: number,
  devname: string,
  cls: KDir,
  uevents: UeventFiles,
  subsystem: string,
): void {
  dir.attr('dev', 0o444, constant(`${major}:${minor}\n`));
  uevents.add({ dir, subsystem }, () => `MAJOR=${major}\nMINOR=${minor}\nDEVNAME=${devname}\n`);
  dir.symlink('subsystem', cls);
  addPower(dir);
}
