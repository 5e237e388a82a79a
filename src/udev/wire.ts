/**
 * udevd's netlink message, as systemd's device_monitor_send_device()
 * (src/libsystemd/sd-device/device-monitor.c) builds it and
 * device_monitor_receive_device() checks it:
 *
 *   struct monitor_netlink_header (40 bytes)
 *     char prefix[8]         "libudev\0"
 *     u32  magic             0xfeedcafe, big-endian
 *     u32  header_size       40, host order
 *     u32  properties_off    40, host order
 *     u32  properties_len    host order
 *     u32  filter_subsystem_hash   MurmurHash2(SUBSYSTEM), big-endian
 *     u32  filter_devtype_hash     MurmurHash2(DEVTYPE) or 0, big-endian
 *     u32  filter_tag_bloom_hi, filter_tag_bloom_lo   (no tags: 0)
 *   then the properties, each "KEY=value\0".
 *
 * The receiver also wants ACTION, DEVPATH, SUBSYSTEM and SEQNUM among them
 * (device_verify() in device-private.c), and a sender whose credentials say
 * uid 0 (the kernel attaches them).
 */
import { stringHash32 } from './murmur.js';

export const UDEV_MONITOR_MAGIC = 0xfeedcafe;
export const HEADER_SIZE = 40;
/** NETLINK_KOBJECT_UEVENT, and its multicast groups (device-monitor.c MONITOR_GROUP_*). */
export const NETLINK_KOBJECT_UEVENT = 15;
export const MONITOR_GROUP_KERNEL = 1;
export const MONITOR_GROUP_UDEV = 2;

/** One device event as udevd broadcasts it: properties in order. */
export type UdevProperties = ReadonlyArray<readonly [string, string]>;

function get(props: UdevProperties, key: string): string | undefined {
  return props.find(([k]) => k === key)?.[1];
}

/** The message bytes for `props` (which must hold SUBSYSTEM). */
export function encodeUdevMessage(props: UdevProperties): Buffer {
  const subsystem = get(props, 'SUBSYSTEM');
  if (subsystem === undefined) throw new Error('a udev message needs SUBSYSTEM');
  const devtype = get(props, 'DEVTYPE');
  const body = Buffer.from(props.map(([k, v]) => `${k}=${v}\0`).join(''), 'utf8');
  const h = Buffer.alloc(HEADER_SIZE);
  h.write('libudev\0', 0, 'latin1');
  h.writeUInt32BE(UDEV_MONITOR_MAGIC, 8);
  h.writeUInt32LE(HEADER_SIZE, 12);
  h.writeUInt32LE(HEADER_SIZE, 16);
  h.writeUInt32LE(body.length, 20);
  h.writeUInt32BE(stringHash32(subsystem), 24);
  h.writeUInt32BE(devtype === undefined ? 0 : stringHash32(devtype), 28);
  return Buffer.concat([h, body]);
}

/** The inverse, for tests and diagnostics: the properties of a message, or an error. */
export function decodeUdevMessage(msg: Buffer): Array<[string, string]> {
  if (msg.length < HEADER_SIZE || msg.toString('latin1', 0, 8) !== 'libudev\0') throw new Error('not a libudev message');
  if (msg.readUInt32BE(8) !== UDEV_MONITOR_MAGIC) throw new Error('bad magic');
  const off = msg.readUInt32LE(16);
  const len = msg.readUInt32LE(20);
  return msg
    .subarray(off, off + len)
    .toString('utf8')
    .split('\0')
    .filter(Boolean)
    .map(kv => {
      const i = kv.indexOf('=');
      return [kv.slice(0, i), kv.slice(i + 1)] as [string, string];
    });
}
