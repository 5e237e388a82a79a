/**
 * Loading vendor plugins: JavaScript files by path with a plain import(),
 * TypeScript files by path with no build step for their author (tsx's
 * tsImport, loaded only then), or installed modules by name, resolved from
 * the current directory. A module's default export is a VendorPlugin or an
 * array of them.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import Module, { register } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Profile, VendorPlugin } from '../core/api.js';
import { errorMessage, firstLine } from '../core/errno.js';
import { UserError } from './errors.js';

/** A plugin that cannot be loaded; the message is one line. */
export class PluginLoadError extends UserError {
  constructor(message: string) {
    super(message);
    this.name = 'PluginLoadError';
  }
}

const fromSource = import.meta.url.endsWith('.ts');

/**
 * The sample drivers shipped with mdevfs, as the profile's kernel had them
 * (4.10: mtty alone): compiled at build time (dist/examples), the source under tsx.
 */
export function samplesPath(profile: Profile = 'modern'): string {
  const name = profile === 'legacy' ? 'samples-legacy' : 'samples';
  const rel = fromSource ? `../../examples/${name}.ts` : `../examples/${name}.js`;
  return fileURLToPath(new URL(rel, import.meta.url));
}

function isPlugin(x: unknown): x is VendorPlugin {
  return !!x && typeof x === 'object' && typeof (x as VendorPlugin).name === 'string' && typeof (x as VendorPlugin).init === 'function';
}

const SCRIPT = /\.(c|m)?(t|j)sx?$/;
const TYPESCRIPT = /\.(c|m)?tsx?$/;

function looksLikePath(spec: string, cwd: string): boolean {
  if (spec.startsWith('./') || spec.startsWith('../') || spec.startsWith('/') || spec === '.' || spec === '..') return true;
  // `name.ts` is a file (a package name has no extension); `pkg/file.js` is one only if it exists.
  if (SCRIPT.test(spec) && (!spec.includes('/') || existsSync(path.resolve(cwd, spec)))) return true;
  return false;
}

/** This package's root: src/daemon/ and dist/daemon/ both sit two levels below it. */
const PACKAGE_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** JavaScript of this package (dist/examples) finds 'mdevfs' by package.json "exports" itself. */
const resolvesItself = (file: string) =>
  !TYPESCRIPT.test(file) && file.startsWith(PACKAGE_ROOT) && !file.slice(PACKAGE_ROOT.length).split(path.sep).includes('node_modules');

let selfImportRegistered = false;
/**
 * Once per process: `import … from 'mdevfs'` in a driver resolves to this
 * installation. Not for `resolvesItself` files: the hook starts a thread, a
 * good part of the default tree's start.
 */
function registerSelfImport(): void {
  if (selfImportRegistered) return;
  selfImportRegistered = true;
  const ext = fromSource ? '.ts' : '.js';
  register(`./self-import-hook${ext}`, import.meta.url);
  // A CommonJS driver (or a .ts one tsx compiles to CommonJS) require()s it,
  // which bypasses the hook above; map the name there too (require(esm) loads it).
  const self = fileURLToPath(new URL(`../index${ext}`, import.meta.url));
  const cjs = Module as unknown as { _resolveFilename: (request: string, ...rest: unknown[]) => string };
  const resolveFilename = cjs._resolveFilename;
  cjs._resolveFilename = function (this: unknown, request: string, ...rest: unknown[]) {
    return request === 'mdevfs' ? self : resolveFilename.call(this, request, ...rest);
  };
}

type TsImport = (specifier: string, parent: string) => Promise<unknown>;
let tsImportFn: TsImport | undefined;

/** tsx, loaded on the first TypeScript driver or module name only. */
async function typescriptLoader(): Promise<TsImport> {
  if (tsImportFn) return tsImportFn;
  try {
    ({ tsImport: tsImportFn } = await import('tsx/esm/api'));
  } catch (e) {
    throw new PluginLoadError(`cannot load the TypeScript loader (tsx): ${firstLine(errorMessage(e))}`);
  }
  return tsImportFn;
}

async function importFile(file: string): Promise<unknown> {
  const url = pathToFileURL(file).href;
  if (TYPESCRIPT.test(file)) return (await typescriptLoader())(url, import.meta.url);
  return import(url);
}

/** tsx's "Transform failed with 1 error:\n<file>:<line>:<col0>: ERROR: <text>" as <file>:<line>:<col>: <text>. */
function esbuildLocation(message: string, file: string): string | undefined {
  const m = /^(.+?):(\d+):(\d+): ERROR: (.*)$/m.exec(message);
  if (!m) return undefined;
  // tsx names x.mts/x.cts/x.tsx as x.ts: give the file its own name back.
  const stem = (f: string) => f.replace(/\.[cm]?[jt]sx?$/, '');
  const where = stem(m[1]!) === stem(file) ? file : m[1]!;
  return `${where}:${m[2]}:${Number(m[3]) + 1}: ${m[4]}`;
}

/**
 * Where a JavaScript file's syntax error is: import() does not say (Node keeps
 * it for its own crash report), `node --check` prints it (path:line, the
 * line, a caret). Only parses the file; undefined if it parses.
 */
function syntaxErrorLocation(file: string): Promise<string | undefined> {
  return new Promise(resolve => {
    execFile(process.execPath, ['--check', file], { timeout: 10_000 }, (err, _stdout, stderr) => {
      if (!err) return resolve(undefined);
      const lines = stderr.split('\n');
      const at = lines.findIndex(l => l.startsWith(`${file}:`));
      const error = lines.find(l => /^\w*Error: /.test(l));
      if (at < 0 || !error) return resolve(undefined);
      const caret = lines[at + 2]?.indexOf('^') ?? -1;
      resolve(`${lines[at]}${caret >= 0 ? `:${caret + 1}` : ''}: ${error}`);
    });
  });
}

/** One line saying why `file` did not load, with the file:line:col of a syntax error. */
async function loadFailure(file: string, e: unknown): Promise<string> {
  const message = errorMessage(e);
  if ((e as Error | undefined)?.name === 'TransformError') return esbuildLocation(message, file) ?? firstLine(message);
  if (e instanceof SyntaxError && !TYPESCRIPT.test(file)) return (await syntaxErrorLocation(file)) ?? firstLine(message);
  return firstLine(message);
}

/** The plugins in one module (its default export: a plugin or an array of them). */
export async function loadPluginModule(spec: string, cwd = process.cwd()): Promise<VendorPlugin[]> {
  // tsx caches compiled code in $TMPDIR/tsx-<uid> without checking who owns
  // it: as root, another user could plant code there. Compile every time. tsx
  // reads this when its modules load (here for require(), and in the module
  // hooks' thread, which self-import-hook sets for itself).
  process.env.TSX_DISABLE_CACHE = '1';
  let mod: unknown;
  if (looksLikePath(spec, cwd)) {
    const file = path.resolve(cwd, spec);
    if (!existsSync(file)) throw new PluginLoadError(`cannot load driver ${spec}: no such file ${file}`);
    if (!resolvesItself(file)) registerSelfImport();
    try {
      mod = await importFile(file);
    } catch (e) {
      if (e instanceof PluginLoadError) throw new PluginLoadError(`cannot load driver ${spec}: ${e.message}`);
      throw new PluginLoadError(`cannot load driver ${spec}: ${await loadFailure(file, e)}`);
    }
  } else {
    registerSelfImport();
    const tsImport = await typescriptLoader();
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

/** Every plugin of every spec, in order; the profile's sample drivers when `specs` is empty. */
export async function loadPlugins(specs: readonly string[], cwd = process.cwd(), profile: Profile = 'modern'): Promise<VendorPlugin[]> {
  if (specs.length === 0) {
    const samples = samplesPath(profile);
    if (!existsSync(samples)) {
      throw new PluginLoadError(`no --driver given and the sample drivers are missing (${samples}; run "npm run build")`);
    }
    return loadPluginModule(samples, cwd);
  }
  const out: VendorPlugin[] = [];
  for (const s of specs) out.push(...(await loadPluginModule(s, cwd)));
  return out;
}
