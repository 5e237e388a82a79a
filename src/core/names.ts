/**
 * The one rule for a name that becomes a directory entry (a parent, a type
 * id, a driver, any kernfs node): not empty, no '/', not '.' or '..', no NUL —
 * what a path lookup could not reach otherwise (fs/kernfs/dir.c
 * kernfs_name_compare looks up exact components).
 */
export function isEntryName(s: unknown): s is string {
  return typeof s === 'string' && s.length > 0 && s !== '.' && s !== '..' && !s.includes('/') && !s.includes('\0');
}
