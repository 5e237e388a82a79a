/**
 * The generic files the driver core gives every device, whatever its bus or
 * class: `uevent` (drivers/base/core.c uevent_show / uevent_store), `power/`
 * (drivers/base/power/sysfs.c, runtime PM never enabled) and a class char
 * device's `dev` and `subsystem` (device_add → device_create_file(dev_attr_dev)).
 */
import { MdevError } from '../core/errno.js';
import type { AttrOps, KAttr, KDir } from '../kernfs/index.js';

/** An attribute whose content never changes. */
export const constant = (text: string): AttrOps => ({ show: () => text });

/** kobject_synth_uevent's parse of a uevent write: an action word, optional args. */
const UEVENT_ACTIONS = new Set(['add', 'remove', 'change', 'move', 'online', 'offline', 'bind', 'unbind']);
export function parseUeventWrite(data: Buffer): void {
  let s = data.toString('latin1');
  if (s.endsWith('\n') || s.endsWith('\0')) s = s.slice(0, -1);
  const sp = s.indexOf(' ');
  const action = sp < 0 ? s : s.slice(0, sp);
  if (!UEVENT_ACTIONS.has(action)) throw new MdevError('EINVAL', `uevent: unknown action '${action}'`);
}

/** The written text without one trailing newline (sysfs_streq's view of a word). */
export function writtenWord(buf: Buffer): string {
  const s = buf.toString('latin1');
  return s.endsWith('\n') ? s.slice(0, -1) : s;
}

/** A device's `uevent`: its variables as KEY=value lines; a write synthesises an event. */
export function addUevent(dir: KDir, vars: () => string): KAttr {
  return dir.attr('uevent', 0o644, { show: vars, store: parseUeventWrite });
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
export function addCharDevFiles(dir: KDir, major: number, minor: number, devname: string, cls: KDir): void {
  dir.attr('dev', 0o444, constant(`${major}:${minor}\n`));
  addUevent(dir, () => `MAJOR=${major}\nMINOR=${minor}\nDEVNAME=${devname}\n`);
  dir.symlink('subsystem', cls);
  addPower(dir);
}
