// The house as docs/architecture.md draws it, checked from the imports:
// data flows one way (cli → run → daemon → {fuse, devfs, sysfs, config} →
// {kernfs, core}), no import cycle (type-only imports count), the core knows
// no files, only src/fuse knows FUSE, and every source file fits a few screens.
import t from 'tap';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src');
const MAX_LINES = 400;
/** A folder may import its own files and those of lower ranks only. */
const RANK: Record<string, number> = {
  cli: 6,
  run: 5,
  daemon: 4,
  fuse: 3,
  devfs: 3,
  sysfs: 3,
  config: 3,
  udev: 3,
  overlay: 2,
  kernfs: 1,
  core: 0,
};

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap(name => {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) return sources(p);
    return p.endsWith('.ts') ? [p] : [];
  });
}

/** Every module specifier a file imports or re-exports, type-only ones included. */
function specifiers(text: string): string[] {
  const out: string[] = [];
  const re = /^\s*(?:import|export)\b[^'"]*?\bfrom\s+['"]([^'"]+)['"]|^\s*import\s+['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)/gm;
  for (const m of text.matchAll(re)) out.push((m[1] ?? m[2] ?? m[3])!);
  return out;
}

const folderOf = (file: string): string => path.relative(SRC, file).split(path.sep)[0]!;

const files = sources(SRC);
const graph = new Map<string, string[]>();
const external = new Map<string, string[]>();
for (const f of files) {
  const specs = specifiers(readFileSync(f, 'utf8'));
  graph.set(
    f,
    specs.filter(s => s.startsWith('.')).map(s => path.resolve(path.dirname(f), s.replace(/\.js$/, '.ts'))),
  );
  external.set(
    f,
    specs.filter(s => !s.startsWith('.')),
  );
}

t.test('the parser sees the imports it must judge', async t => {
  t.ok(files.length > 50, `${files.length} source files`);
  t.ok(graph.get(path.join(SRC, 'core/core.ts'))!.includes(path.join(SRC, 'core/context.ts')));
  t.same(specifiers("import type { A } from './a.js';\nexport * from \"../b.js\";\nimport './c.js';"), ['./a.js', '../b.js', './c.js']);
});

t.test(`no source file over ${MAX_LINES} lines`, async t => {
  const long = files
    .map(f => [path.relative(SRC, f), readFileSync(f, 'utf8').split('\n').length] as const)
    .filter(([, n]) => n > MAX_LINES);
  t.same(long, []);
});

t.test('no import cycle, type-only imports included', async t => {
  const cycles: string[] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (f: string): void => {
    state.set(f, 'open');
    stack.push(f);
    for (const g of graph.get(f) ?? []) {
      if (state.get(g) === 'open')
        cycles.push(
          stack
            .slice(stack.indexOf(g))
            .concat(g)
            .map(x => path.relative(SRC, x))
            .join(' → '),
        );
      else if (!state.has(g) && graph.has(g)) visit(g);
    }
    stack.pop();
    state.set(f, 'done');
  };
  for (const f of files) if (!state.has(f)) visit(f);
  t.same(cycles, []);
});

t.test('no folder imports a higher layer', async t => {
  const bad: string[] = [];
  for (const [f, deps] of graph) {
    const from = folderOf(f);
    if (!(from in RANK)) continue; // the package entry, src/index.ts, exports from any layer
    for (const d of deps) {
      const to = folderOf(d);
      if (to !== from && !(RANK[to]! < RANK[from]!)) bad.push(`${path.relative(SRC, f)} → ${path.relative(SRC, d)}`);
    }
  }
  t.same(bad, []);
});

t.test('src/core knows no files and no other layer; only src/fuse knows FUSE', async t => {
  const bad: string[] = [];
  for (const [f, specs] of external) {
    const where = folderOf(f);
    for (const s of specs) {
      if (where === 'core' && /^node:(fs|path|child_process|net|os)\b|^(fs|path)$/.test(s)) bad.push(`${path.relative(SRC, f)} → ${s}`);
      if (where !== 'fuse' && s === 'fuse-native') bad.push(`${path.relative(SRC, f)} → ${s}`);
    }
  }
  for (const [f, deps] of graph) {
    if (folderOf(f) === 'core')
      for (const d of deps) if (folderOf(d) !== 'core') bad.push(`${path.relative(SRC, f)} → ${path.relative(SRC, d)}`);
  }
  t.same(bad, []);
});
