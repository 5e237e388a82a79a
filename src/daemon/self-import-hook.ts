/**
 * A module resolve hook (node:module register) that lets a driver living
 * anywhere write `import { MdevError } from 'mdevfs'`: the package's own name
 * resolves to this installation, so a plugin author installs nothing.
 */
// This module runs in the module hooks' thread, whose environment is a copy
// made when the thread started (maybe by a NODE_OPTIONS preload, before
// plugins.ts could set this): tsx's hooks, registered after us, read it
// there. See plugins.ts for why tsx must not use its disk cache.
process.env.TSX_DISABLE_CACHE = '1';

const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
const self = new URL(`../index${ext}`, import.meta.url).href;

interface ResolveResult {
  url: string;
  shortCircuit?: boolean;
  format?: string | null;
}
type NextResolve = (specifier: string, context: unknown) => Promise<ResolveResult>;

export async function resolve(specifier: string, context: unknown, next: NextResolve): Promise<ResolveResult> {
  if (specifier === 'mdevfs') return { url: self, shortCircuit: true };
  return next(specifier, context);
}
