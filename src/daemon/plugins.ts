/**
 * Loading vendor plugins: TypeScript (or JavaScript) files by path, with no
 * build step for their author (tsx's tsImport), or installed modules by name,
 * resolved from the current directory. A module's default export is a
 * VendorPlugin or an array of them.
 */
import { existsSync } from 'node:fs';
import Module, { register } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { VendorPlugin } from '../core/api.js';
import { errorMessage, firstLine } from '../core/errno.js';
import { UserError } from './errors.js';

/** A plugin that cannot be loaded; the message is one line. */
export class PluginLoadError extends UserError {
  constructor(message: string) {
    super(message);
    this.name = 'PluginLoadError';
  }
}

/** The sample drivers shipped with mdevfs (examples/samples.ts). */
export function samplesPath(): string {
  // dist/daemon/plugins.js and src/daemon/plugins.ts both sit two levels below the package root.
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../examples/samples.ts');
}

function isPlugin(x: unknown): x is VendorPlugin {
  return !!x && typeof x === 'object' && typeof (x as VendorPlugin).name === 'string' && typeof (x as VendorPlugin).init === 'function';
}

function looksLikePath(spec: string, cwd: string): boolean {
  if (spec.startsWith('./') || spec.startsWith('../') || spec.startsWith('/') || spec === '.' || spec === '..') return true;
  if (/\.(c|m)?(t|j)sx?$/.test(spec) && existsSync(path.resolve(cwd, spec))) return true;
  return false;
}

let selfImportRegistered = false;
/** Once per process: `import … from 'mdevfs'` in a driver resolves to this installation. */
function registerSelfImport(): void {
  if (selfImportRegistered) return;
  selfImportRegistered = true;
  const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
  register(`./self-import-hook${ext}`, import.meta.url);
  // tsx compiles a .ts file outside an ESM package to CommonJS, whose require()
  // bypasses the hook above; map the name there too (require(esm) loads it).
  const self = fileURLToPath(new URL(`../index${ext}`, import.meta.url));
  const cjs = Module as unknown as { _resolveFilename: (request: string, ...rest: unknown[]) => string };
  const resolveFilename = cjs._resolveFilename;
  cjs._resolveFilename = function (this: unknown, request: string, ...rest: unknown[]) {
    return request === 'mdevfs' ? self : resolveFilename.call(this, request, ...rest);
  };
}

/** The plugins in one module (its default export: a plugin or an array of them). */
export async function loadPluginModule(spec: string, cwd = process.cwd()): Promise<VendorPlugin[]> {
  registerSelfImport();
  let tsImport: (specifier: string, parent: string) => Promise<unknown>;
  try {
    ({ tsImport } = await import('tsx/esm/api'));
  } catch (e) {
    throw new PluginLoadError(`cannot load the TypeScript loader (tsx): ${firstLine(errorMessage(e))}`);
  }
  let mod: unknown;
  if (looksLikePath(spec, cwd)) {
    const file = path.resolve(cwd, spec);
    if (!existsSync(file)) throw new PluginLoadError(`cannot load driver ${spec}: no such file`);
    try {
      mod = await tsImport(pathToFileURL(file).href, import.meta.url);
    } catch (e) {
      throw new PluginLoadError(`cannot load driver ${spec}: ${firstLine(errorMessage(e))}`);
    }
  } else {
    try {
      // Bare names resolve as an import from a file in the current directory would.
      mod = await tsImport(spec, pathToFileURL(path.join(cwd, 'mdevfs-driver-loader.js')).href);
    } catch (e) {
      throw new PluginLoadError(`cannot load driver module ${spec}: ${firstLine(errorMessage(e))}`);
    }
  }
  let exp = (mod as { default?: unknown } | undefined)?.default;
  // A CommonJS module compiled from ESM: { default: { default: plugin } }
  if (exp && !Array.isArray(exp) && !isPlugin(exp) && (exp as { default?: unknown }).default !== undefined) {
    exp = (exp as { default?: unknown }).default;
  }
  const list = Array.isArray(exp) ? exp : [exp];
  if (list.length === 0 || !list.every(isPlugin)) {
    throw new PluginLoadError(`driver ${spec}: the default export is not a VendorPlugin (or an array of them)`);
  }
  return list;
}

/** Every plugin of every spec, in order; the sample drivers when `specs` is empty. */
export async function loadPlugins(specs: readonly string[], cwd = process.cwd()): Promise<VendorPlugin[]> {
  if (specs.length === 0) {
    const samples = samplesPath();
    if (!existsSync(samples)) {
      throw new PluginLoadError(`no --driver given and the sample drivers are missing (${samples})`);
    }
    return loadPluginModule(samples, cwd);
  }
  const out: VendorPlugin[] = [];
  for (const s of specs) out.push(...(await loadPluginModule(s, cwd)));
  return out;
}
