/**
 * The order in which a directory lists its children: kernfs keeps siblings
 * in a red-black tree sorted by name hash, then name (fs/kernfs/dir.c
 * kernfs_name_hash, kernfs_name_compare), and kernfs_fop_readdir walks it in
 * that order, so a client that takes "the first entry" of a raw listing sees
 * the kernel's hash order, not creation order. Checked against this order on
 * a real /sys (test/kernfs/readdir.test.ts).
 */
import type { KDir, KNode } from './nodes.js';

const U64 = (1n << 64n) - 1n;
/** include/linux/hash.h GOLDEN_RATIO_64, for hash_long() on a 64-bit kernel. */
const GOLDEN_RATIO_64 = 0x61c8864680b583ebn;
const INT_MAX = 0x7fffffff;

/** kernfs_name_hash(name, NULL) on a 64-bit kernel (include/linux/stringhash.h). */
export function kernfsNameHash(name: string): number {
  let hash = 0n; // init_name_hash(NULL)
  for (const byte of Buffer.from(name, 'utf8')) {
    // `char` is signed on x86: bytes from 0x80 are sign-extended.
    const c = BigInt(byte >= 0x80 ? byte - 256 : byte) & U64;
    hash = ((hash + ((c << 4n) & U64) + (c >> 4n)) * 11n) & U64; // partial_name_hash
  }
  let h = Number(((hash * GOLDEN_RATIO_64) & U64) >> 32n) & INT_MAX; // end_name_hash, then & 0x7fffffff
  if (h < 2) h += 2;
  if (h >= INT_MAX) h = INT_MAX - 1;
  return h;
}

const hashes = new WeakMap<KNode, number>();
const orders = new WeakMap<KDir, { generation: number; nodes: KNode[] }>();

function hashOf(n: KNode): number {
  let h = hashes.get(n);
  if (h === undefined) hashes.set(n, (h = kernfsNameHash(n.name)));
  return h;
}

/** The children of `dir` in kernfs readdir order; sorted once per change of the directory. */
export function readdirOrder(dir: KDir): readonly KNode[] {
  const cached = orders.get(dir);
  if (cached && cached.generation === dir.generation) return cached.nodes;
  const nodes = [...dir.children.values()].sort(
    (a, b) => hashOf(a) - hashOf(b) || Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)),
  );
  orders.set(dir, { generation: dir.generation, nodes });
  return nodes;
}
