/**
 * Uevents as the kernel would send them: keys in kobject_uevent_env() order
 * (ACTION, DEVPATH, SUBSYSTEM, the caller's extra env, the subsystem's own
 * vars such as DRIVER, then SEQNUM), with one SEQNUM sequence starting at 1.
 */
import type { Uevent } from './api.js';

export class UeventSource {
  #seqnum = 0;

  /** add / remove / bind / unbind of a mediated device (SUBSYSTEM=mdev). */
  mdev(action: 'add' | 'remove' | 'bind' | 'unbind', devpath: string, driver?: string): Uevent {
    const ev: Uevent = { ACTION: action, DEVPATH: devpath, SUBSYSTEM: 'mdev', SEQNUM: 0 };
    // dev_uevent adds DRIVER only while dev->driver is set: on bind, not on
    // unbind (__device_release_driver clears it before KOBJ_UNBIND).
    if (driver !== undefined) ev.DRIVER = driver;
    return this.#stamp(ev);
  }

  /**
   * add / remove of a VFIO char device (the group `vfio/<N>`, SUBSYSTEM=vfio,
   * or `vfio-dev/vfio<k>`, SUBSYSTEM=vfio-dev): dev_uevent adds MAJOR, MINOR
   * and DEVNAME (the class devnode name) for a device with a devt.
   */
  chardev(
    action: 'add' | 'remove',
    devpath: string,
    subsystem: 'vfio' | 'vfio-dev',
    major: number,
    minor: number,
    devname: string,
  ): Uevent {
    const ev: Uevent = { ACTION: action, DEVPATH: devpath, SUBSYSTEM: subsystem, SEQNUM: 0 };
    ev.MAJOR = String(major);
    ev.MINOR = String(minor);
    ev.DEVNAME = devname;
    return this.#stamp(ev);
  }

  /**
   * The parent's change event with MDEV_STATE (modern kernels only), then the
   * parent's own dev_uevent variables in order (DRIVER, PCI_*, MODALIAS...):
   * kobject_uevent_env() adds the caller's envp_ext before the subsystem's vars.
   */
  parentState(
    devpath: string,
    subsystem: string,
    state: 'registered' | 'unregistered',
    vars: ReadonlyArray<readonly [string, string]>,
  ): Uevent {
    const ev: Uevent = { ACTION: 'change', DEVPATH: devpath, SUBSYSTEM: subsystem, MDEV_STATE: state, SEQNUM: 0 };
    for (const [k, v] of vars) if (!(k in ev)) ev[k] = v;
    return this.#stamp(ev);
  }

  /**
   * add / remove of a bus driver's kobject (DEVPATH /bus/<bus>/drivers/<name>):
   * its kset, the bus's "drivers", has no uevent_ops, so SUBSYSTEM is the
   * kset's name (lib/kobject_uevent.c) and nothing else is added.
   */
  driver(action: 'add' | 'remove', devpath: string): Uevent {
    return this.#stamp({ ACTION: action, DEVPATH: devpath, SUBSYSTEM: 'drivers', SEQNUM: 0 });
  }

  /**
   * An event of a bus device such as a PCI function (SUBSYSTEM=pci): its
   * dev_uevent variables (DRIVER while bound, then the bus's) after the
   * standard keys.
   */
  device(action: Uevent['ACTION'], devpath: string, subsystem: string, vars: ReadonlyArray<readonly [string, string]>): Uevent {
    const ev: Uevent = { ACTION: action, DEVPATH: devpath, SUBSYSTEM: subsystem, SEQNUM: 0 };
    for (const [k, v] of vars) if (!(k in ev)) ev[k] = v;
    return this.#stamp(ev);
  }

  /** An event user space asked for (kobject_synth_uevent): its fields in order, then SEQNUM. */
  synthetic(fields: Readonly<Record<string, string>>): Uevent {
    return this.#stamp({ ...fields, SEQNUM: 0 } as Uevent);
  }

  #stamp(ev: Uevent): Uevent {
    // SEQNUM is assigned last so it is also the last key, as in the kernel.
    delete (ev as { SEQNUM?: number }).SEQNUM;
    ev.SEQNUM = ++this.#seqnum;
    return ev;
  }
}

/** The KEY=value lines of a `uevent` file, in order (uevent_show's format). */
export function parseUeventVars(text: string): Array<[string, string]> {
  const vars: Array<[string, string]> = [];
  for (const line of text.split('\n')) {
    const i = line.indexOf('=');
    if (i > 0 && /^[A-Za-z0-9_]+$/.test(line.slice(0, i))) vars.push([line.slice(0, i), line.slice(i + 1)]);
  }
  return vars;
}
