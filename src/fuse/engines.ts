/** The FUSE engines (docs/fuse.md#engines), and which one serves when none is asked for. No imports: the package's types reach this file. */

/** `kernel` speaks the FUSE protocol on /dev/fuse itself (root only); `fuse-native` goes through libfuse 2. */
export const ENGINES = ['kernel', 'fuse-native'] as const;
export type EngineName = (typeof ENGINES)[number];

/**
 * The engine when none is asked for: `MDEVFS_ENGINE` if set (how the test
 * suite runs on either), else the kernel engine as root and fuse-native
 * otherwise (only root can mount without fusermount).
 */
export function defaultEngine(env: NodeJS.ProcessEnv = process.env): EngineName {
  const e = env.MDEVFS_ENGINE;
  if (e === 'kernel' || e === 'fuse-native') return e;
  return process.getuid?.() === 0 ? 'kernel' : 'fuse-native';
}
