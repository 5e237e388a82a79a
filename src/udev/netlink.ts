/**
 * A raw AF_NETLINK socket. Node has none of its own; the npm package
 * `netlink` (N-API, prebuilt for linux x64/arm64/arm/ia32, so nothing is
 * compiled at install) has one whose send() is a plain sendmsg(2) with a
 * sockaddr_nl destination (port, groups bitmask), sent at once when its FIFO
 * queue is empty. Only its raw layer is loaded, and through our own minimal
 * type: its declarations pull in @types/node 12.
 */
import { createRequire } from 'node:module';

export interface NetlinkSendOptions {
  /** Destination port id (0: the kernel). */
  port?: number;
  /** Destination multicast groups, as a bitmask (group n is 1 << (n-1)). */
  groups?: number;
}

export interface RawNetlinkSocket {
  send(msg: Uint8Array | Uint8Array[], options?: NetlinkSendOptions, callback?: (error?: Error & { code?: string }) => void): void;
  on(event: 'message', listener: (msg: Buffer, rinfo: { port: number; groups: number }) => void): this;
  on(event: 'error', listener: (err: Error) => void): this;
  close(): void;
  unref(): void;
  address(): { port: number; groups: number };
}

type RawModule = { RawNetlinkSocket: new (protocol: number, options?: Record<string, unknown>) => RawNetlinkSocket };

let raw: RawModule | undefined;

/** Open a netlink socket of `protocol` (NETLINK_ROUTE 0, NETLINK_KOBJECT_UEVENT 15...), bound to a free port id. */
export function openNetlink(protocol: number): RawNetlinkSocket {
  raw ??= createRequire(import.meta.url)('netlink/dist/raw.js') as RawModule;
  return new raw.RawNetlinkSocket(protocol, {});
}
