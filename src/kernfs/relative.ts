/**
 * A link's text (fs/kernfs/symlink.c kernfs_get_target_path()), over any
 * node with a name and a parent: kept apart from nodes.ts so that file stays
 * the tree alone.
 */
interface Named {
  readonly name: string;
  readonly parent: Named | null;
}

/**
 * kernfs_get_target_path(): the relative path from directory `from` (the one
 * containing the link) to `target`. Up ("../") from `from` until reaching a
 * directory that is the target's parent or one of its ancestors, then down
 * through the target's names.
 */
export function relativeTarget(from: Named, target: Named): string {
  const ancestors = new Set<Named>();
  for (let a = target.parent; a; a = a.parent) ancestors.add(a);
  let up = '';
  let base: Named = from;
  while (base.parent && !ancestors.has(base)) {
    up += '../';
    base = base.parent;
  }
  const down: string[] = [];
  for (let n: Named | null = target; n && n !== base; n = n.parent) down.push(n.name);
  if (!down.length) return up.replace(/\/$/, '') || '.';
  return up + down.reverse().join('/');
}
