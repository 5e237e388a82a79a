/**
 * The config validator: every rule of src/config/mdevfs-config.schema.json, plus
 * the few the schema cannot express (unique parent names and type ids, known
 * template placeholders). It collects every problem, each naming the field
 * path and why, e.g.
 *   parents[0].types[2].cost: required when capacity.model is "pool"
 * No dependency: the format is small enough to check by hand.
 */
import { ConfigError, type ConfigIssue } from './errors.js';
import { joinPath, type SourcePos } from './json.js';
import { parseTemplate, templateNames } from './template.js';
import { checkPciConfig } from './pci-config.js';
import { checkPciFunctions } from './validate-pci.js';
import {
  ATTR_KEY_PATTERN,
  CAPACITY_ERRNOS,
  CAPACITY_MODELS,
  DEVICE_APIS,
  MODE_PATTERN,
  NAME_PATTERN,
  PARENT_PATH_PATTERN,
  PLACEHOLDERS,
  RESERVED_ATTRS,
  RESERVED_GROUPS,
  type AttrScope,
  type CapacityModel,
  type ConfigDoc,
} from './types.js';

const NAME_RE = new RegExp(NAME_PATTERN);
const ATTR_KEY_RE = new RegExp(ATTR_KEY_PATTERN);
const PATH_RE = new RegExp(PARENT_PATH_PATTERN);
const MODE_RE = new RegExp(MODE_PATTERN);
const LEGACY_ATTRS = ['name', 'description', 'device_api', 'available_instances'] as const;

const TOP_KEYS = ['$schema', '$comment', 'version', 'name', 'parents', 'pciFunctions'];
const PARENT_KEYS = [
  '$comment',
  'path',
  'typePrefix',
  'driver',
  'deviceApi',
  'subsystem',
  'parentDriver',
  'iommuGroup',
  'attrs',
  'devAttrs',
  'capacity',
  'types',
  'deviceAttrs',
  'pciConfig',
];
const TYPE_KEYS = ['id', 'name', 'description', 'deviceApi', 'max', 'cost', 'attrs', 'legacyAttrs'];
const ATTR_SPEC_KEYS = ['value', 'writable', 'mode'];
const CAPACITY_KEYS: Record<CapacityModel, readonly string[]> = {
  fixed: ['model', 'oneTypeAtATime', 'exhaustedErrno', 'conflictErrno'],
  pool: ['model', 'size', 'oneTypeAtATime', 'exhaustedErrno', 'conflictErrno'],
  counter: ['model', 'maxInstances'],
};
const ALL_CAPACITY_KEYS = [...new Set(Object.values(CAPACITY_KEYS).flat())];

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const has = (o: Obj, k: string): boolean => Object.prototype.hasOwnProperty.call(o, k);
const q = (s: string): string => JSON.stringify(s);
const list = (xs: readonly string[]): string => xs.map(q).join(', ');

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'number' && !Number.isInteger(v)) return `the number ${v}`;
  return `${typeof v} ${JSON.stringify(v)}`;
}

class Checker {
  readonly issues: ConfigIssue[] = [];
  add(path: string, message: string): void {
    this.issues.push({ path, message });
  }

  object(path: string, v: unknown): v is Obj {
    if (isObj(v)) return true;
    this.add(path, `must be an object, not ${typeName(v)}`);
    return false;
  }
  string(path: string, v: unknown, opts: { pattern?: RegExp; what?: string; nonEmpty?: boolean } = {}): v is string {
    if (typeof v !== 'string') {
      this.add(path, `must be a string, not ${typeName(v)}`);
      return false;
    }
    if (opts.nonEmpty && v === '') {
      this.add(path, 'must not be empty');
      return false;
    }
    if (opts.pattern && !opts.pattern.test(v)) {
      this.add(path, `${q(v)} is not ${opts.what ?? `a valid value (pattern ${opts.pattern.source})`}`);
      return false;
    }
    return true;
  }
  integer(path: string, v: unknown, min: number, why = min === 0 ? 'a non-negative integer' : 'a positive integer'): v is number {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) {
      this.add(path, `must be ${why}, not ${typeName(v)}`);
      return false;
    }
    return true;
  }
  boolean(path: string, v: unknown): v is boolean {
    if (typeof v !== 'boolean') {
      this.add(path, `must be true or false, not ${typeName(v)}`);
      return false;
    }
    return true;
  }
  oneOf<T extends string>(path: string, v: unknown, allowed: readonly T[]): v is T {
    if (typeof v === 'string' && (allowed as readonly string[]).includes(v)) return true;
    this.add(path, `must be one of ${list(allowed)}, not ${typeName(v)}`);
    return false;
  }
  /** Unknown properties (each one reported); `why` explains a key that is known elsewhere. */
  keys(path: string, o: Obj, allowed: readonly string[], why?: (k: string) => string | undefined): void {
    for (const k of Object.keys(o)) {
      if (allowed.includes(k)) continue;
      this.add(joinPath(path, k), why?.(k) ?? `unknown property (allowed: ${list(allowed)})`);
    }
  }
  required(path: string, o: Obj, keys: readonly string[], why = 'required'): void {
    for (const k of keys) if (!has(o, k)) this.add(joinPath(path, k), why);
  }
}

const NAME_WHAT = 'a valid name (letters, digits and _ . : + , @ ! ~ -; starting with a letter, digit or _)';

function checkAttrs(c: Checker, path: string, v: unknown, scope: AttrScope): void {
  if (!c.object(path, v)) return;
  const placeholders: readonly string[] = PLACEHOLDERS[scope];
  for (const [key, val] of Object.entries(v)) {
    const p = joinPath(path, key);
    if (scope === 'type' && !NAME_RE.test(key)) {
      c.add(p, `${q(key)} is not a valid type attribute name (${NAME_WHAT}; type attributes have no subdirectories)`);
    } else if (!ATTR_KEY_RE.test(key)) {
      c.add(p, `${q(key)} is not a valid attribute name ("name" or "group/name"; each part ${NAME_WHAT})`);
    } else {
      const slash = key.indexOf('/');
      if (slash < 0 && RESERVED_ATTRS[scope].includes(key)) {
        c.add(p, `${q(key)} is reserved: the core provides it in this directory (reserved: ${list(RESERVED_ATTRS[scope])})`);
      } else if (slash >= 0 && RESERVED_GROUPS[scope].includes(key.slice(0, slash))) {
        c.add(
          p,
          `group ${q(key.slice(0, slash))} is reserved: the core provides that directory (reserved: ${list(RESERVED_GROUPS[scope])})`,
        );
      }
    }
    let text: unknown;
    let textPath = p;
    if (typeof val === 'string') {
      text = val;
    } else if (isObj(val)) {
      c.keys(p, val, ATTR_SPEC_KEYS);
      if (has(val, 'value')) {
        text = val.value;
        textPath = joinPath(p, 'value');
        c.string(textPath, text);
      }
      if (has(val, 'writable')) c.boolean(joinPath(p, 'writable'), val.writable);
      if (
        has(val, 'mode') &&
        c.string(joinPath(p, 'mode'), val.mode, { pattern: MODE_RE, what: 'an octal mode string such as "0644" or "0200"' })
      ) {
        const mode = parseInt(val.mode as string, 8);
        const canWrite = (mode & 0o222) !== 0;
        if (val.writable === true && !canWrite) c.add(joinPath(p, 'writable'), `is true but mode ${val.mode} has no write bit`);
        if (val.writable === false && canWrite) c.add(joinPath(p, 'writable'), `is false but mode ${val.mode} has a write bit`);
      }
    } else {
      c.add(p, `must be a string (the value) or an object { value, writable, mode }, not ${typeName(val)}`);
    }
    if (typeof text === 'string') {
      const t = parseTemplate(text);
      if (!t.ok) c.add(textPath, t.error);
      else {
        for (const name of templateNames(t.parts)) {
          if (!placeholders.includes(name)) {
            c.add(textPath, `unknown placeholder {${name}} (${scope} attributes may use ${placeholders.map(n => `{${n}}`).join(', ')})`);
          }
        }
      }
    }
  }
}

function checkCapacity(c: Checker, path: string, v: unknown): CapacityModel | undefined {
  if (!c.object(path, v)) return undefined;
  if (!has(v, 'model')) {
    c.add(joinPath(path, 'model'), `required (one of ${list(CAPACITY_MODELS)})`);
    c.keys(path, v, ALL_CAPACITY_KEYS);
    return undefined;
  }
  if (!c.oneOf(joinPath(path, 'model'), v.model, CAPACITY_MODELS)) {
    c.keys(path, v, ALL_CAPACITY_KEYS);
    return undefined;
  }
  const model = v.model;
  const allowed = CAPACITY_KEYS[model];
  c.keys(path, v, allowed, k => (ALL_CAPACITY_KEYS.includes(k) ? `not allowed when capacity.model is ${q(model)}` : undefined));
  if (model === 'pool') {
    if (!has(v, 'size')) c.add(joinPath(path, 'size'), 'required when capacity.model is "pool" (the pool\'s total units)');
    else c.integer(joinPath(path, 'size'), v.size, 1);
  }
  if (model === 'counter') {
    if (!has(v, 'maxInstances'))
      c.add(joinPath(path, 'maxInstances'), 'required when capacity.model is "counter" (the per-parent core counter)');
    else c.integer(joinPath(path, 'maxInstances'), v.maxInstances, 0);
  }
  if (model !== 'counter') {
    if (has(v, 'oneTypeAtATime')) c.boolean(joinPath(path, 'oneTypeAtATime'), v.oneTypeAtATime);
    for (const k of ['exhaustedErrno', 'conflictErrno']) {
      if (has(v, k)) c.oneOf(joinPath(path, k), v[k], CAPACITY_ERRNOS);
    }
  }
  return model;
}

function checkType(c: Checker, path: string, v: unknown, model: CapacityModel | undefined): string | undefined {
  if (!c.object(path, v)) return undefined;
  c.keys(path, v, TYPE_KEYS);
  let id: string | undefined;
  if (!has(v, 'id')) c.add(joinPath(path, 'id'), 'required (the type\'s sysfs name: the directory is "<typePrefix>-<id>")');
  else if (c.string(joinPath(path, 'id'), v.id, { pattern: NAME_RE, what: NAME_WHAT })) id = v.id;
  if (has(v, 'name')) c.string(joinPath(path, 'name'), v.name, { nonEmpty: true });
  if (has(v, 'description')) c.string(joinPath(path, 'description'), v.description);
  if (has(v, 'deviceApi')) c.oneOf(joinPath(path, 'deviceApi'), v.deviceApi, DEVICE_APIS);
  if (has(v, 'max')) {
    if (model === 'counter')
      c.add(joinPath(path, 'max'), 'not allowed when capacity.model is "counter" (the counter is per parent; use capacity.maxInstances)');
    else c.integer(joinPath(path, 'max'), v.max, 0);
  } else if (model === 'fixed') {
    c.add(joinPath(path, 'max'), 'required when capacity.model is "fixed" (how many devices of this type fit)');
  }
  if (has(v, 'cost')) {
    if (model === 'pool') c.integer(joinPath(path, 'cost'), v.cost, 1, 'a positive integer when capacity.model is "pool"');
    else if (model !== undefined)
      c.add(joinPath(path, 'cost'), `not allowed when capacity.model is ${q(model)} (only the "pool" model has costs)`);
  } else if (model === 'pool') {
    c.add(joinPath(path, 'cost'), 'required when capacity.model is "pool" (pool units one device of this type takes)');
  }
  if (has(v, 'attrs')) checkAttrs(c, joinPath(path, 'attrs'), v.attrs, 'type');
  if (has(v, 'legacyAttrs')) {
    const lp = joinPath(path, 'legacyAttrs');
    if (!Array.isArray(v.legacyAttrs)) c.add(lp, `must be an array, not ${typeName(v.legacyAttrs)}`);
    else {
      const seen = new Set<unknown>();
      v.legacyAttrs.forEach((a, i) => {
        if (c.oneOf(joinPath(lp, i), a, LEGACY_ATTRS) && seen.has(a)) c.add(joinPath(lp, i), `${q(a)} is listed twice`);
        seen.add(a);
      });
    }
  }
  return id;
}

function checkParent(c: Checker, path: string, v: unknown): { name?: string; path?: string } {
  if (!c.object(path, v)) return {};
  c.keys(path, v, PARENT_KEYS);
  c.required(path, v, ['path', 'typePrefix', 'driver']);
  const out: { name?: string; path?: string } = {};
  if (has(v, '$comment')) c.string(joinPath(path, '$comment'), v.$comment);
  if (
    has(v, 'path') &&
    c.string(joinPath(path, 'path'), v.path, {
      pattern: PATH_RE,
      what: 'a path below /sys such as "devices/pci0000:00/0000:00:02.0" (starts with "devices/", no "." or ".." parts, no trailing "/")',
    })
  ) {
    out.path = v.path;
    out.name = v.path.slice(v.path.lastIndexOf('/') + 1);
  }
  if (has(v, 'typePrefix')) c.string(joinPath(path, 'typePrefix'), v.typePrefix, { pattern: NAME_RE, what: NAME_WHAT });
  if (has(v, 'driver')) c.string(joinPath(path, 'driver'), v.driver, { pattern: NAME_RE, what: NAME_WHAT });
  if (has(v, 'deviceApi')) c.oneOf(joinPath(path, 'deviceApi'), v.deviceApi, DEVICE_APIS);
  let hasBus = false;
  if (has(v, 'subsystem')) {
    const sp = joinPath(path, 'subsystem');
    if (c.object(sp, v.subsystem)) {
      const s = v.subsystem;
      const kinds = ['class', 'bus'].filter(k => has(s, k));
      c.keys(sp, s, ['class', 'bus']);
      if (kinds.length !== 1) c.add(sp, `must have exactly one of "class" or "bus"${kinds.length ? ', not both' : ''}`);
      for (const k of kinds) c.string(joinPath(sp, k), s[k], { pattern: NAME_RE, what: NAME_WHAT });
      hasBus = kinds.length === 1 && kinds[0] === 'bus';
    }
  }
  if (has(v, 'parentDriver')) {
    if (c.string(joinPath(path, 'parentDriver'), v.parentDriver, { pattern: NAME_RE, what: NAME_WHAT }) && !hasBus) {
      c.add(joinPath(path, 'parentDriver'), 'needs subsystem.bus (only a bus device has a bound driver)');
    }
  }
  if (has(v, 'iommuGroup')) c.integer(joinPath(path, 'iommuGroup'), v.iommuGroup, 0);
  if (has(v, 'attrs')) checkAttrs(c, joinPath(path, 'attrs'), v.attrs, 'parent');
  if (has(v, 'devAttrs')) checkAttrs(c, joinPath(path, 'devAttrs'), v.devAttrs, 'parent');
  if (has(v, 'deviceAttrs')) checkAttrs(c, joinPath(path, 'deviceAttrs'), v.deviceAttrs, 'device');
  if (has(v, 'pciConfig')) checkPciConfig(c, joinPath(path, 'pciConfig'), v, hasBus);

  let model: CapacityModel | undefined;
  if (!has(v, 'capacity')) c.add(joinPath(path, 'capacity'), `required (an object whose model is one of ${list(CAPACITY_MODELS)})`);
  else model = checkCapacity(c, joinPath(path, 'capacity'), v.capacity);

  const tp = joinPath(path, 'types');
  if (!has(v, 'types')) c.add(tp, 'required (at least one type)');
  else if (!Array.isArray(v.types)) c.add(tp, `must be an array, not ${typeName(v.types)}`);
  else if (v.types.length === 0) c.add(tp, 'must list at least one type');
  else {
    const ids = new Map<string, number>();
    v.types.forEach((t, i) => {
      const id = checkType(c, joinPath(tp, i), t, model);
      if (id === undefined) return;
      const prev = ids.get(id);
      if (prev !== undefined) c.add(joinPath(joinPath(tp, i), 'id'), `duplicate type id ${q(id)} (also types[${prev}])`);
      else ids.set(id, i);
    });
  }
  return out;
}

/** Every problem in `doc` (empty when it is a valid config). Never throws. */
export function validateConfig(doc: unknown): ConfigIssue[] {
  const c = new Checker();
  if (!c.object('', doc)) return c.issues;
  c.keys('', doc, TOP_KEYS);
  if (has(doc, '$schema')) c.string('$schema', doc.$schema);
  if (has(doc, '$comment')) c.string('$comment', doc.$comment);
  if (has(doc, 'version') && doc.version !== 1) c.add('version', `must be 1 (the only format version), not ${typeName(doc.version)}`);
  if (has(doc, 'name')) c.string('name', doc.name, { nonEmpty: true });
  const checks = {
    c,
    attrs: (p: string, v: unknown, scope: AttrScope) => checkAttrs(c, p, v, scope),
    capacity: (p: string, v: unknown) => checkCapacity(c, p, v),
    type: (p: string, v: unknown, m: CapacityModel | undefined) => checkType(c, p, v, m),
  };
  const pci = has(doc, 'pciFunctions') ? checkPciFunctions(checks, 'pciFunctions', doc.pciFunctions) : [];
  if (!has(doc, 'parents')) c.add('parents', 'required (at least one parent)');
  else if (!Array.isArray(doc.parents)) c.add('parents', `must be an array, not ${typeName(doc.parents)}`);
  else if (doc.parents.length === 0 && !has(doc, 'pciFunctions')) c.add('parents', 'must list at least one parent');
  else {
    const names = new Map<string, number>();
    doc.parents.forEach((p, i) => {
      const r = checkParent(c, joinPath('parents', i), p);
      if (r.name === undefined) return;
      const prev = names.get(r.name);
      if (prev !== undefined) {
        c.add(
          joinPath(joinPath('parents', i), 'path'),
          `parent name ${q(r.name)} (the path's basename) is already used by parents[${prev}]; /sys/class/mdev_bus/<name> must be unique`,
        );
      } else if (pci.includes(r.name)) {
        c.add(joinPath(joinPath('parents', i), 'path'), `parent name ${q(r.name)} is a PCI function of pciFunctions`);
      } else names.set(r.name, i);
    });
  }
  return c.issues;
}

/** Attach source positions: a missing field points at its nearest ancestor that has one. */
export function locateIssues(issues: readonly ConfigIssue[], positions: ReadonlyMap<string, SourcePos>): ConfigIssue[] {
  return issues.map(issue => {
    let p = issue.path;
    for (;;) {
      const pos = positions.get(p);
      if (pos) return { ...issue, pos };
      if (p === '') return issue;
      const cut = Math.max(p.lastIndexOf('.'), p.lastIndexOf('['));
      p = cut < 0 ? '' : p.slice(0, cut);
    }
  });
}

/** Throw a ConfigError listing every problem, or narrow `doc` to a ConfigDoc. */
export function assertValidConfig(
  doc: unknown,
  opts: { file?: string; positions?: ReadonlyMap<string, SourcePos> } = {},
): asserts doc is ConfigDoc {
  const issues = validateConfig(doc);
  if (issues.length === 0) return;
  if (!opts.positions) throw ConfigError.invalid(issues, opts.file);
  // In file order (a stable sort keeps the checking order for equal positions).
  const located = locateIssues(issues, opts.positions).sort(
    (a, b) => (a.pos?.line ?? 0) - (b.pos?.line ?? 0) || (a.pos?.column ?? 0) - (b.pos?.column ?? 0),
  );
  throw ConfigError.invalid(located, opts.file);
}
