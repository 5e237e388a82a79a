// The JSON Schema and the hand-written validator must agree: on the good and
// bad fixtures, on hundreds of mutants of the good fixtures, and on the
// enumerations and patterns they both spell out.
import t from 'tap';
import { readFile, readdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { validateConfig } from '../../src/config/validate.js';
import { joinPath } from '../../src/config/json.js';
import {
  ATTR_KEY_PATTERN,
  CAPACITY_ERRNOS,
  CAPACITY_MODELS,
  DEVICE_APIS,
  MODE_PATTERN,
  NAME_PATTERN,
  PARENT_PATH_PATTERN,
  PCI_CONFIG_HEX_PATTERN,
  PCIE_LINK_SPEEDS,
  PCIE_LINK_WIDTHS,
  PLACEHOLDERS,
  RESERVED_ATTRS,
  RESERVED_GROUPS,
} from '../../src/config/types.js';
import { makeInterpreter } from './schema-interp.js';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const schema = JSON.parse(await readFile(here('../../src/config/mdevfs-config.schema.json'), 'utf8')) as Record<string, any>;
const interp = makeInterpreter(schema);
const FIX = here('../fixtures/config/');
const goodNames = (await readdir(FIX)).filter(f => f.endsWith('.json')).sort();
const good = await Promise.all(goodNames.map(async f => [f, JSON.parse(await readFile(FIX + f, 'utf8'))] as const));
const expected = JSON.parse(await readFile(FIX + 'bad/expected.json', 'utf8')) as Record<
  string,
  { paths: string[]; schemaPaths?: string[]; semanticOnly?: boolean }
>;
const badNames = (await readdir(FIX + 'bad')).filter(f => f.endsWith('.json') && f !== 'expected.json').sort();

t.test('the schema is draft 2020-12 and the interpreter understands all of it', async t => {
  t.equal(schema.$schema, 'https://json-schema.org/draft/2020-12/schema');
  t.same(
    interp({ parents: 'x' }).map(e => e.path),
    ['parents'],
  );
  t.ok(good.length >= 4, 'there are good fixtures');
});

t.test('good fixtures pass both', async t => {
  for (const [name, doc] of good) {
    t.same(interp(doc), [], `${name}: schema`);
    t.same(validateConfig(doc), [], `${name}: validator`);
  }
});

t.test('every bad fixture has an expectation and vice versa', async t => {
  t.same(badNames, Object.keys(expected).sort());
});

for (const name of badNames) {
  t.test(`bad fixture ${name}`, async t => {
    const doc = JSON.parse(await readFile(FIX + 'bad/' + name, 'utf8'));
    const exp = expected[name]!;
    const vPaths = validateConfig(doc).map(i => i.path);
    const sPaths = interp(doc).map(e => e.path);
    for (const p of exp.paths) t.ok(vPaths.includes(p), `validator names ${p} (got ${vPaths.join(', ')})`);
    if (exp.semanticOnly) {
      t.same(sPaths, [], 'a rule the schema cannot express: the schema accepts it');
    } else {
      for (const p of exp.schemaPaths ?? exp.paths) t.ok(sPaths.includes(p), `schema flags ${p} (got ${sPaths.join(', ')})`);
    }
  });
}

// Mutants: delete each property, add an unknown one, give each leaf a wrong
// value. Schema and validator must accept or reject each mutant together, and
// the validator must name the mutated field.
type Mutant = { what: string; at: string; doc: unknown };
function* mutants(doc: unknown): Generator<Mutant> {
  const clone = () => structuredClone(doc) as any;
  const nodes: Array<{ path: string; keys: Array<string | number> }> = [];
  const walk = (v: unknown, path: string, keys: Array<string | number>) => {
    nodes.push({ path, keys });
    if (Array.isArray(v)) v.forEach((x, i) => walk(x, joinPath(path, i), [...keys, i]));
    else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(x, joinPath(path, k), [...keys, k]);
  };
  walk(doc, '', []);
  const get = (d: any, keys: Array<string | number>) => keys.reduce((o, k) => o[k], d);
  for (const { path, keys } of nodes) {
    const v = get(doc, keys);
    const set = (nv: unknown, what: string): Mutant => {
      const d = clone();
      if (keys.length === 0) return { what, at: path, doc: nv };
      get(d, keys.slice(0, -1))[keys[keys.length - 1]!] = nv;
      return { what, at: path, doc: d };
    };
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      for (const k of Object.keys(v)) {
        const d = clone();
        delete get(d, keys)[k];
        yield { what: `delete ${joinPath(path, k)}`, at: joinPath(path, k), doc: d };
      }
      const d = clone();
      get(d, keys).zzUnknown = 1;
      yield { what: `add ${joinPath(path, 'zzUnknown')}`, at: joinPath(path, 'zzUnknown'), doc: d };
      yield set([], `${path} → []`);
    } else if (Array.isArray(v)) {
      yield set([], `${path} → []`);
      yield set({}, `${path} → {}`);
    } else if (typeof v === 'string') {
      yield set(42, `${path} → 42`);
      yield set('', `${path} → ""`);
      yield set('a b', `${path} → "a b"`);
    } else if (typeof v === 'number') {
      yield set(-1, `${path} → -1`);
      yield set(0, `${path} → 0`);
      yield set(0.5, `${path} → 0.5`);
      yield set(String(v), `${path} → "${v}"`);
    } else if (typeof v === 'boolean') {
      yield set('true', `${path} → "true"`);
      yield set(!v, `${path} → ${!v}`);
    }
  }
}

t.test('schema and validator agree on mutants of every good fixture', async t => {
  let total = 0;
  let rejected = 0;
  const disagreements: string[] = [];
  const unnamed: string[] = [];
  for (const [name, doc] of good) {
    for (const m of mutants(doc)) {
      total++;
      const v = validateConfig(m.doc);
      const s = interp(m.doc);
      if ((v.length === 0) !== (s.length === 0)) {
        disagreements.push(
          `${name}: ${m.what}: validator ${v.length ? 'rejects' : 'accepts'} [${v.map(i => `${i.path}: ${i.message}`).join('; ')}], schema ${s.length ? 'rejects' : 'accepts'} [${s.map(e => `${e.path} (${e.keyword})`).join('; ')}]`,
        );
      }
      if (v.length) {
        rejected++;
        // The mutated field, or (when a required sibling now fails) a field of the same object.
        const parent = m.at.replace(/(\.[^.[]+|\[[^\]]+\])$/, '');
        if (
          !v.some(
            i =>
              i.path === m.at ||
              i.path.startsWith(m.at + '.') ||
              i.path.startsWith(m.at + '[') ||
              (i.path.startsWith(parent) && parent !== ''),
          )
        ) {
          unnamed.push(`${name}: ${m.what}: ${v.map(i => i.path).join(', ')}`);
        }
      }
    }
  }
  t.same(disagreements, [], 'no disagreements');
  t.same(unnamed, [], 'every rejection names the mutated field or its object');
  t.ok(total > 300, `${total} mutants`);
  t.ok(rejected > 150, `${rejected} rejected`);
});

t.test('enumerations and patterns are the same in both', async t => {
  const d = schema.$defs;
  t.same(d.deviceApi.enum, DEVICE_APIS);
  t.same(d.errno.enum, CAPACITY_ERRNOS);
  t.same(d.capacity.properties.model.enum, CAPACITY_MODELS);
  t.equal(d.name.pattern, NAME_PATTERN);
  t.equal(d.attrKey.pattern, ATTR_KEY_PATTERN);
  t.equal(d.parent.properties.path.pattern, PARENT_PATH_PATTERN);
  t.equal(d.attrValue.anyOf[1].properties.mode.pattern, MODE_PATTERN);
  const pci = d.parent.properties.pciConfig;
  t.same(pci.properties.link.properties.speed.enum, PCIE_LINK_SPEEDS);
  t.same(pci.properties.link.properties.width.enum, PCIE_LINK_WIDTHS);
  t.equal(pci.properties.hex.pattern, PCI_CONFIG_HEX_PATTERN);
  t.same(d.parentAttrs.propertyNames.not.anyOf[0].enum, RESERVED_ATTRS.parent);
  t.same(d.deviceAttrs.propertyNames.not.anyOf[0].enum, RESERVED_ATTRS.device);
  t.same(d.typeAttrs.propertyNames.not.enum, RESERVED_ATTRS.type);
  t.equal(d.parentAttrs.propertyNames.not.anyOf[1].pattern, `^(${RESERVED_GROUPS.parent.join('|')})/`);
  t.equal(d.deviceAttrs.propertyNames.not.anyOf[1].pattern, `^(${RESERVED_GROUPS.device.join('|')})/`);
  for (const p of PLACEHOLDERS.device) t.match(d.attrValue.description, `{${p}}`, `schema documents {${p}}`);
  t.same(schema.required, ['parents']);
  t.same(d.parent.required, ['path', 'typePrefix', 'driver', 'capacity', 'types']);
  t.same(d.type.required, ['id']);
});

t.test('the example in src/config/README.md is a valid config', async t => {
  const md = await readFile(here('../../src/config/README.md'), 'utf8');
  const block = /```json\n([\s\S]*?)```/.exec(md);
  t.ok(block, 'there is a json block');
  const doc = JSON.parse(block![1]!);
  t.same(validateConfig(doc), []);
  t.same(interp(doc), []);
});
