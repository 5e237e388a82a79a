/**
 * Bring `lo` up in a fresh network namespace, where it starts down: one
 * RTM_NEWLINK request on a NETLINK_ROUTE socket (what `ip link set lo up`
 * sends), so no iproute2 is needed. In a new namespace lo is always ifindex 1
 * (net/core/dev.c: the loopback device is registered first, and ifindex
 * allocation starts at 1 per namespace).
 */
import { openNetlink } from '../udev/netlink.js';

const NETLINK_ROUTE = 0;
const RTM_NEWLINK = 16;
const NLMSG_ERROR = 2;
const NLM_F_REQUEST = 0x1;
const NLM_F_ACK = 0x4;
const IFF_UP = 0x1;
const LOOPBACK_IFINDEX = 1;

/** struct nlmsghdr + struct ifinfomsg { family, pad, type, index, flags, change }. */
export function setLinkUpRequest(ifindex: number, seq: number): Buffer {
  const b = Buffer.alloc(32);
  b.writeUInt32LE(32, 0); // nlmsg_len
  b.writeUInt16LE(RTM_NEWLINK, 4);
  b.writeUInt16LE(NLM_F_REQUEST | NLM_F_ACK, 6);
  b.writeUInt32LE(seq, 8);
  b.writeUInt32LE(0, 12); // nlmsg_pid
  b.writeUInt8(0, 16); // ifi_family AF_UNSPEC
  b.writeUInt16LE(0, 18); // ifi_type
  b.writeInt32LE(ifindex, 20);
  b.writeUInt32LE(IFF_UP, 24); // ifi_flags
  b.writeUInt32LE(IFF_UP, 28); // ifi_change
  return b;
}

/** Resolves when the kernel acknowledged; rejects with its errno (or after `timeoutMs`). */
export function loopbackUp(timeoutMs = 5000): Promise<void> {
  return new Promise((resolve, reject) => {
    let sock: ReturnType<typeof openNetlink>;
    try {
      sock = openNetlink(NETLINK_ROUTE);
    } catch (e) {
      reject(e instanceof Error ? e : new Error(String(e)));
      return;
    }
    const seq = 1;
    const finish = (err?: Error) => {
      clearTimeout(timer);
      sock.close();
      if (err) reject(err);
      else resolve();
    };
    const timer = setTimeout(() => finish(new Error('no answer from the kernel to RTM_NEWLINK')), timeoutMs);
    sock.on('message', msg => {
      if (msg.length < 20 || msg.readUInt16LE(4) !== NLMSG_ERROR || msg.readUInt32LE(8) !== seq) return;
      const errno = -msg.readInt32LE(16);
      finish(errno === 0 ? undefined : new Error(`RTM_NEWLINK lo up: errno ${errno}`));
    });
    sock.on('error', e => finish(e));
    sock.send(setLinkUpRequest(LOOPBACK_IFINDEX, seq), { port: 0 }, err => {
      if (err) finish(err);
    });
  });
}
