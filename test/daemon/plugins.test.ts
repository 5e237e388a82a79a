// Loading vendor plugins: TypeScript by path with no build step, JavaScript,
// modules by name from the current directory, arrays, and clear errors.
import t from 'tap';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { loadPluginModule, loadPlugins, PluginLoadError, samplesPath } from '../../src/daemon/plugins.js';
import { FIXTURES, REPO } from '../helpers/daemon.js';
import { scratchDir } from '../helpers/util.js';

const scratch = (t: { teardown(fn: () => unknown): void }): Promise<string> => scratchDir(t, 'mdevfs-plugins-');

async function loadError(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    t.type(e, PluginLoadError);
    return (e as Error).message;
  }
  return 'no error';
}

t.test('a TypeScript file by path, absolute or relative to the cwd', async t => {
  const abs = await loadPluginModule(path.join(FIXTURES, 'test-plugin.ts'));
  t.same(
    abs.map(p => p.name),
    ['mtest'],
  );
  const rel = await loadPluginModule('./test/fixtures/test-plugin.ts', REPO);
  t.same(
    rel.map(p => p.name),
    ['mtest'],
  );
  const bare = await loadPluginModule('test/fixtures/test-plugin.ts', REPO);
  t.same(
    bare.map(p => p.name),
    ['mtest'],
    'an existing file without ./',
  );
});

t.test('JavaScript files, arrays, and modules by name from the cwd', async t => {
  const dir = await scratch(t);
  await fsp.writeFile(path.join(dir, 'two.mjs'), 'const mk = n => ({ name: n, init() {} });\nexport default [mk("one"), mk("two")];\n');
  t.same(
    (await loadPluginModule('./two.mjs', dir)).map(p => p.name),
    ['one', 'two'],
  );
  const mod = path.join(dir, 'node_modules', 'mdevfs-driver-demo');
  await fsp.mkdir(mod, { recursive: true });
  await fsp.writeFile(path.join(mod, 'package.json'), JSON.stringify({ name: 'mdevfs-driver-demo', type: 'module', main: 'index.js' }));
  await fsp.writeFile(path.join(mod, 'index.js'), 'export default { name: "demo", init() {} };\n');
  t.same(
    (await loadPluginModule('mdevfs-driver-demo', dir)).map(p => p.name),
    ['demo'],
  );
  const cjs = path.join(dir, 'node_modules', 'mdevfs-driver-cjs');
  await fsp.mkdir(cjs, { recursive: true });
  await fsp.writeFile(path.join(cjs, 'package.json'), JSON.stringify({ name: 'mdevfs-driver-cjs', main: 'index.js' }));
  await fsp.writeFile(
    path.join(cjs, 'index.js'),
    'Object.defineProperty(exports, "__esModule", { value: true });\nexports.default = { name: "cjs", init() {} };\n',
  );
  t.same(
    (await loadPluginModule('mdevfs-driver-cjs', dir)).map(p => p.name),
    ['cjs'],
    'compiled CommonJS',
  );
  t.match(
    await loadError(loadPluginModule('mdevfs-driver-demo', REPO)),
    /cannot load driver module mdevfs-driver-demo/,
    'resolved from the cwd, not from mdevfs',
  );
  const all = await loadPlugins(['./two.mjs', 'mdevfs-driver-demo'], dir);
  t.same(
    all.map(p => p.name),
    ['one', 'two', 'demo'],
    'several --driver options, in order',
  );
});

t.test('errors are one line', async t => {
  const m1 = await loadError(loadPluginModule(path.join(FIXTURES, 'throws-on-import.ts')));
  t.match(m1, /this driver module is broken$/);
  t.notMatch(m1, /\n/);
  t.match(await loadError(loadPluginModule(path.join(FIXTURES, 'bad-export.ts'))), /not a VendorPlugin/);
  t.match(await loadError(loadPluginModule('./missing.ts', REPO)), /no such file/);
  const dir = await scratch(t);
  await fsp.writeFile(path.join(dir, 'syntax.ts'), 'export default { name: "x", init() { \n');
  const m2 = await loadError(loadPluginModule('./syntax.ts', dir));
  t.match(m2, /cannot load driver \.\/syntax\.ts: /);
  t.notMatch(m2, /\n/);
  await fsp.writeFile(path.join(dir, 'empty.ts'), 'export default [];\n');
  t.match(await loadError(loadPluginModule('./empty.ts', dir)), /not a VendorPlugin/);
});

t.test('the default is the sample drivers', async t => {
  t.equal(samplesPath(), path.join(REPO, 'examples/samples.ts'));
  const samples = await loadPlugins([]);
  t.same(samples.map(p => p.name).sort(), ['mbochs', 'mdpy', 'mtty']);
  // 4.10's samples/vfio-mdev/ held mtty alone.
  t.equal(samplesPath('legacy'), path.join(REPO, 'examples/samples-legacy.ts'));
  t.same(
    (await loadPlugins([], REPO, 'legacy')).map(p => p.name),
    ['mtty'],
  );
});

t.test("a driver outside the package can import 'mdevfs' (ESM and CommonJS contexts)", async t => {
  const dir = await scratch(t);
  const body = [
    "import { MdevError } from 'mdevfs';",
    "import type { VendorPlugin } from 'mdevfs';",
    'const p: VendorPlugin = { name: "outside", init() { if (!new MdevError("ENOSPC").code) throw new Error("no code"); } };',
    'export default p;',
  ].join('\n');
  // No package.json here: tsx compiles .ts to CommonJS, .mts stays ESM.
  await fsp.writeFile(path.join(dir, 'cjs-context.ts'), body);
  await fsp.writeFile(path.join(dir, 'esm-context.mts'), body);
  for (const f of ['cjs-context.ts', 'esm-context.mts']) {
    const [p] = await loadPluginModule(path.join(dir, f));
    t.equal(p?.name, 'outside', f);
    await p?.init({} as never);
  }
});
