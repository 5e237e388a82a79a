/**
 * The generic files the driver core gives every device, whatever its bus or
 * class: `power/` (drivers/base/power/sysfs.c, runtime PM never enabled) and
 * a class char device's `dev` and `subsystem` (device_add →
 * device_create_file(dev_attr_dev)). Its `uevent` is uevent-files.ts's.
 */
import type { Profile } from '../core/api.js';
import { MdevError } from '../core/errno.js';
import type { AttrOps, KDir } from '../kernfs/index.js';
import type { UeventFiles } from './uevent-files.js';

/** An attribute whose content never changes. */
export const constant = (text: string): AttrOps => ({ show: () => text });

/**
 * sysfs_streq()'s view of a written word (lib/string.c; kernfs ends the
 * buffer with a NUL): up to the first NUL, without one trailing newline.
 */
export function writtenWord(buf: Buffer): string {
  let s = buf.toString('latin1');
  const nul = s.indexOf('\0');
  if (nul >= 0) s = s.slice(0, nul);
  return s.endsWith('\n') ? s.slice(0, -1) : s;
}

/** 4.10's control_store() word: everything before the first newline (memchr), NULs included. */
function lineWord(buf: Buffer): string {
  const s = buf.toString('latin1');
  const nl = s.indexOf('\n');
  return nl >= 0 ? s.slice(0, nl) : s;
}

/**
 * power/ of a device whose runtime PM is never enabled. `control` compares
 * with sysfs_streq() today, and in 4.10 looked only before the first newline.
 */
export function addPower(dir: KDir, profile: Profile): KDir {
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
      const word = profile === 'legacy' ? lineWord(d) : writtenWord(d);
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
  profile: Profile,
): void {
  dir.attr('dev', 0o444, constant(`${major}:${minor}\n`));
  uevents.add({ dir, subsystem }, () => `MAJOR=${major}\nMINOR=${minor}\nDEVNAME=${devname}\n`);
  dir.symlink('subsystem', cls);
  addPower(dir, profile);
}
