// Reading a config file: JSON syntax errors with line:column, every schema
// error at once with its field path (and where it is in the file), unreadable
// files, and nothing compiled from a bad file.
import t from 'tap';
import { mkdtemp, readFile, readdir, writeFile, chmod, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseJson, JsonSyntaxError } from '../../src/config/json.js';
import { loadConfigFile, parseConfig, compileConfig, ConfigError, validateConfig, formatConfig } from '../../src/config/index.js';

const FIX = fileURLToPath(new URL('../fixtures/config/', import.meta.url));
const dir = await mkdtemp(join(tmpdir(), 'mdevfs-config-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));

const MTTY = {
  parents: [
    {
      path: 'devices/virtual/mtty/mtty',
      typePrefix: 'mtty',
      driver: 'mtty',
      subsystem: { class: 'mtty' },
      capacity: { model: 'fixed' },
      types: [
        { id: '1', name: 'Single port serial', max: 24 },
        { id: '2', name: 'Dual port serial', max: 12 },
      ],
    },
  ],
};

async function rejects(p: Promise<unknown>): Promise<ConfigError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error('expected a ConfigError');
}

t.test('the JSON parser agrees with JSON.parse on every fixture', async t => {
  const files = [...(await readdir(FIX)).filter(f => f.endsWith('.json')), ...(await readdir(FIX + 'bad')).map(f => 'bad/' + f)];
  for (const f of files) {
    if (!f.endsWith('.json')) continue;
    const text = await readFile(FIX + f, 'utf8');
    t.same(parseJson(text).value, JSON.parse(text), f);
  }
  t.same(parseJson('{"a":[1,2.5e3,-0.5,true,false,null,"\\u00e9\\n\\"x"]}').value, { a: [1, 2500, -0.5, true, false, null, 'é\n"x'] });
  t.same(parseJson('\ufeff {"__proto__": 1}').value, JSON.parse('{"__proto__": 1}'));
});

t.test('the JSON parser records where each value starts', async t => {
  const { positions } = parseJson('{\n  "parents": [\n    { "path": "x",\n      "types": [ {"id": 1} ] }\n  ]\n}');
  t.same(positions.get(''), { line: 1, column: 1 });
  t.same(positions.get('parents'), { line: 2, column: 3 }, 'a member: its key');
  t.same(positions.get('parents[0]'), { line: 3, column: 5 }, 'an element: its value');
  t.same(positions.get('parents[0].path'), { line: 3, column: 7 });
  t.same(positions.get('parents[0].types[0].id'), { line: 4, column: 19 });
});

t.test('JSON syntax errors carry line:column', async t => {
  const cases: Array<[string, number, number, RegExp]> = [
    ['{\n  "a": 1,\n}', 3, 1, /trailing comma/],
    ['{\n  "a": }', 2, 8, /unexpected "}"/],
    ['{"a": 1}\n{"b": 2}', 2, 1, /after the document/],
    ['{"a": 1, "a": 2}', 1, 10, /duplicate key "a"/],
    ['{"a": "x\ny"}', 1, 9, /control character/],
    ['{"a": tru}', 1, 7, /unexpected "t"/],
    ['', 1, 1, /empty document/],
    ['{"a": [1, 2', 1, 12, /end of input/],
    ["{'a': 1}", 1, 2, /double-quoted property name/],
  ];
  for (const [text, line, column, reason] of cases) {
    try {
      parseJson(text);
      t.fail(`parsed ${JSON.stringify(text)}`);
    } catch (e) {
      t.ok(e instanceof JsonSyntaxError, JSON.stringify(text));
      const err = e as JsonSyntaxError;
      t.same([err.line, err.column], [line, column], `${JSON.stringify(text)} at ${line}:${column}`);
      t.match(err.reason, reason);
    }
  }
});

t.test('loadConfigFile: invalid JSON names the file, line and column', async t => {
  const f = join(dir, 'broken.json');
  await writeFile(f, '{\n  "parents": [\n    { "path": "devices/x", }\n  ]\n}\n');
  const e = await rejects(loadConfigFile(f));
  t.equal(e.kind, 'syntax');
  t.equal(e.message, `${f}:3:28: invalid JSON: trailing comma before "}"`);
});

t.test('loadConfigFile: unreadable files', async t => {
  const missing = await rejects(loadConfigFile(join(dir, 'nope.json')));
  t.equal(missing.kind, 'read');
  t.match(missing.message, /cannot read config file .*nope\.json: no such file \(ENOENT\)/);
  const isDir = await rejects(loadConfigFile(dir));
  t.equal(isDir.kind, 'read');
  t.match(isDir.message, /is a directory \(EISDIR\)/);
  if (process.getuid?.() !== 0) {
    const f = join(dir, 'secret.json');
    await writeFile(f, '{}');
    await chmod(f, 0o000);
    t.match((await rejects(loadConfigFile(f))).message, /permission denied \(EACCES\)/);
  }
});

t.test('loadConfigFile: every schema error, each with its path, why, and line:column', async t => {
  const f = join(dir, 'bad.json');
  await writeFile(
    f,
    [
      '{',
      '  "parents": [',
      '    {',
      '      "path": "devices/pci0000:00/0000:00:1e.0",',
      '      "typePrefix": "nvidia",',
      '      "drivr": "nvidia-vgpu-vfio",',
      '      "capacity": { "model": "pool", "size": 16384, "oneTypeAtATime": "yes" },',
      '      "types": [',
      '        { "id": "222", "cost": 1024 },',
      '        { "id": "223", "cost": 2048, "deviceApi": "vfio-usb" },',
      '        { "id": "224", "cost": 0 }',
      '      ],',
      '      "deviceAttrs": { "nvidia/vgpu_params": { "value": "{uuuid}", "writable": true } }',
      '    }',
      '  ]',
      '}',
    ].join('\n'),
  );
  const e = await rejects(loadConfigFile(f));
  t.equal(e.kind, 'invalid');
  t.equal(
    e.message,
    [
      `invalid mdevfs config ${f} (6 errors):`,
      `  ${f}:3:5: parents[0].driver: required`,
      `  ${f}:6:7: parents[0].drivr: unknown property (allowed: "$comment", "path", "typePrefix", "driver", "deviceApi", "subsystem", "parentDriver", "iommuGroup", "attrs", "devAttrs", "capacity", "types", "deviceAttrs", "pciConfig")`,
      `  ${f}:7:53: parents[0].capacity.oneTypeAtATime: must be true or false, not string "yes"`,
      `  ${f}:10:38: parents[0].types[1].deviceApi: must be one of "vfio-pci", "vfio-platform", "vfio-amba", "vfio-ccw", "vfio-ap", not string "vfio-usb"`,
      `  ${f}:11:24: parents[0].types[2].cost: must be a positive integer when capacity.model is "pool", not number 0`,
      `  ${f}:13:48: parents[0].deviceAttrs["nvidia/vgpu_params"].value: unknown placeholder {uuuid} (device attributes may use {parent}, {path}, {prefix}, {type}, {type_id}, {type_name}, {device_api}, {uuid}, {index}, {index1})`,
    ].join('\n'),
  );
  t.same(
    e.issues.map(i => [i.path, i.pos?.line, i.pos?.column]),
    [
      ['parents[0].driver', 3, 5],
      ['parents[0].drivr', 6, 7],
      ['parents[0].capacity.oneTypeAtATime', 7, 53],
      ['parents[0].types[1].deviceApi', 10, 38],
      ['parents[0].types[2].cost', 11, 24],
      ['parents[0].deviceAttrs["nvidia/vgpu_params"].value', 13, 48],
    ],
  );
});

t.test('validation messages name the field and say why', async t => {
  const doc = structuredClone(MTTY) as any;
  doc.parents[0].capacity = { model: 'pool', size: 24 };
  doc.parents[0].types[1].cost = 1.5;
  doc.parents[0].iommuGroup = -3;
  doc.parents[0].subsystem = { class: 'mtty', bus: 'pci' };
  const msgs = validateConfig(doc).map(i => `${i.path}: ${i.message}`);
  t.same(msgs, [
    'parents[0].subsystem: must have exactly one of "class" or "bus", not both',
    'parents[0].iommuGroup: must be a non-negative integer, not number -3',
    'parents[0].types[0].cost: required when capacity.model is "pool" (pool units one device of this type takes)',
    'parents[0].types[1].cost: must be a positive integer when capacity.model is "pool", not the number 1.5',
  ]);
  t.same(
    validateConfig(null).map(i => `${i.path}: ${i.message}`),
    [': must be an object, not null'],
  );
  t.same(
    validateConfig({ parents: [] }).map(i => `${i.path}: ${i.message}`),
    ['parents: must list at least one parent'],
  );
});

t.test('compileConfig refuses an invalid document before there is a plugin', async t => {
  const doc = structuredClone(MTTY) as any;
  delete doc.parents[0].types[0].max;
  doc.parents[0].typePrefix = 'mt/ty';
  let err: unknown;
  try {
    compileConfig(doc);
  } catch (e) {
    err = e;
  }
  t.ok(err instanceof ConfigError, 'throws a ConfigError');
  const e = err as ConfigError;
  t.equal(e.kind, 'invalid');
  t.same(
    e.issues.map(i => i.path),
    ['parents[0].typePrefix', 'parents[0].types[0].max'],
  );
  t.match(e.message, 'parents[0].types[0].max: required when capacity.model is "fixed"');
  t.match(e.message, 'parents[0].typePrefix: "mt/ty" is not a valid name');
});

t.test('parseConfig and formatConfig round-trip', async t => {
  const text = formatConfig(MTTY as any);
  t.ok(text.endsWith('}\n'));
  t.same(parseConfig(text), MTTY);
});

t.test('loadConfigFile compiles a good file into a named plugin', async t => {
  const p = await loadConfigFile(FIX + 'mtty-fixed.json');
  t.equal(p.name, 'config:mtty-fixed', 'named after the file when the doc has no name');
  t.equal(typeof p.init, 'function');
  t.equal((await loadConfigFile(FIX + 't4-host.json')).name, 't4-host', 'doc.name wins');
  t.equal((await loadConfigFile(FIX + 't4-host.json', { name: 'x' })).name, 'x', 'an explicit name wins');
});
