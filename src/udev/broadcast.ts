/**
 * The udev side of a uevent, as a udevd-less user space would see it: every
 * uevent the core emits, in the core's (the kernel's) order, becomes the
 * message udevd would multicast once its rules had run, on the udev netlink
 * group (NETLINK_KOBJECT_UEVENT, group 2) of the caller's network namespace.
 *
 * The properties are the kernel's, in the kernel's order (ACTION, DEVPATH,
 * SUBSYSTEM, ..., SEQNUM), as udevd keeps them after reading the kernel's
 * message (sd-device's device_new_from_nulstr()), plus what udevd adds:
 * DEVNAME made absolute under /dev (device_set_devname()), and
 * USEC_INITIALIZED (device_ensure_usec_initialized() in systemd's
 * sd-device/device-private.c). udevd carries that time over from the
 * device's database entry, but device_update_db() writes its `I:` line only
 * for a device with information of its own (device_has_info(): devlinks,
 * properties or tags from rules). No rules run here, so no device has any:
 * every event but `remove` gets the CLOCK_MONOTONIC time in µs at which udevd
 * handled it, and `remove` (event_execute_rules_on_remove(), which only reads
 * the database) gets none. There are no tags and no ID_* properties.
 */
import type { Uevent } from '../core/api.js';
import { openNetlink, type RawNetlinkSocket } from './netlink.js';
import { MONITOR_GROUP_UDEV, NETLINK_KOBJECT_UEVENT, encodeUdevMessage, type UdevProperties } from './wire.js';

/** CLOCK_MONOTONIC in µs (process.hrtime is CLOCK_MONOTONIC on Linux). */
export function monotonicUsec(): bigint {
  return process.hrtime.bigint() / 1000n;
}

/** A device's properties as udevd would broadcast them for `ev`; no USEC_INITIALIZED without a time. */
export function udevProperties(ev: Uevent, usecInitialized: bigint | undefined): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const [k, v] of Object.entries(ev)) {
    if (v === undefined) continue;
    let value = String(v);
    if (k === 'DEVNAME' && !value.startsWith('/')) value = `/dev/${value}`;
    out.push([k, value]);
  }
  if (usecInitialized !== undefined) out.push(['USEC_INITIALIZED', String(usecInitialized)]);
  return out;
}

/** Where encoded messages go (a netlink socket, or a test's array). */
export interface UdevSink {
  send(msg: Buffer): void;
  close(): void;
}

/**
 * Turns the core's uevents into udev messages: `handle` is a core 'uevent'
 * listener. Tells a listener (the udev database, say) what it sent.
 */
export class UdevBroadcaster {
  readonly #sink: UdevSink;
  readonly #listeners: Array<(action: string, props: UdevProperties) => void> = [];
  #sent = 0;

  constructor(sink: UdevSink) {
    this.#sink = sink;
  }

  /** Messages handed to the sink so far. */
  #closed = false;

  get sent(): number {
    return this.#sent;
  }

  onSent(listener: (action: string, props: UdevProperties) => void): void {
    this.#listeners.push(listener);
  }

  handle(ev: Uevent): void {
    if (this.#closed) return;
    // No device has an `I:` line to carry a time over from (see above).
    const props = udevProperties(ev, ev.ACTION === 'remove' ? undefined : monotonicUsec());
    this.#sink.send(encodeUdevMessage(props));
    this.#sent++;
    for (const l of this.#listeners) l(ev.ACTION, props);
  }

  /** Idempotent; nothing is sent after it. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#sink.close();
  }
}

/**
 * A sink that multicasts on the udev group of this process's network
 * namespace. sendmsg(2) to groups 1 << (2-1) and port 0, as udevd does: the
 * kernel attaches our credentials (uid 0), which libudev checks. Send errors
 * (no listener's buffer is ever one of them) are reported to `log`, never thrown.
 */
export function netlinkUdevSink(log: (m: string) => void): UdevSink {
  const sock: RawNetlinkSocket = openNetlink(NETLINK_KOBJECT_UEVENT);
  sock.on('error', e => log(`udev netlink socket: ${e.message}`));
  sock.unref();
  let open = true;
  return {
    send: msg => {
      if (!open) return;
      sock.send(msg, { port: 0, groups: 1 << (MONITOR_GROUP_UDEV - 1) }, err => {
        // ECONNREFUSED: the unicast half (to port 0) found no kernel reader;
        // device-monitor.c expects it for a multicast send too.
        if (err && err.code !== 'ECONNREFUSED') log(`udev broadcast: ${err.message}`);
      });
    },
    close: () => {
      if (open) sock.close();
      open = false;
    },
  };
}
