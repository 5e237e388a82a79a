/**
 * MurmurHash2 (Austin Appleby's 32-bit version), as systemd's MurmurHash2.c
 * computes it: 4-byte blocks read in host order (little-endian here), the
 * tail bytes folded in, then the final mix. udevd hashes SUBSYSTEM and
 * DEVTYPE with seed 0 (device-monitor.c string_hash32()) and libudev's
 * monitor filters on those hashes in a BPF program, so a wrong hash drops the
 * event in the listener's kernel socket.
 */
const M = 0x5bd1e995;

export function murmurHash2(data: Uint8Array, seed = 0): number {
  let len = data.length;
  let h = (seed ^ len) >>> 0;
  let i = 0;
  while (len >= 4) {
    let k = (data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24)) >>> 0;
    k = Math.imul(k, M);
    k ^= k >>> 24;
    k = Math.imul(k, M);
    h = Math.imul(h, M) ^ k;
    i += 4;
    len -= 4;
  }
  if (len >= 3) h ^= data[i + 2]! << 16;
  if (len >= 2) h ^= data[i + 1]! << 8;
  if (len >= 1) {
    h ^= data[i]!;
    h = Math.imul(h, M);
  }
  h ^= h >>> 13;
  h = Math.imul(h, M);
  h ^= h >>> 15;
  return h >>> 0;
}

/** string_hash32(): the hash of a string's bytes, without the terminating NUL. */
export function stringHash32(s: string): number {
  return murmurHash2(Buffer.from(s, 'utf8'), 0);
}
