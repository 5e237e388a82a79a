/**
 * A tiny JSON Schema (draft 2020-12) interpreter for the keywords the config
 * schema uses. It throws on any keyword it does not know, so the schema cannot
 * quietly grow a rule this test does not check.
 */
import { joinPath } from '../../src/config/json.js';

export interface SchemaError {
  /** Instance path, rendered as the validator renders it. */
  path: string;
  keyword: string;
}

type Schema = boolean | Record<string, unknown>;

const ANNOTATIONS = new Set(['$schema', '$id', '$defs', '$comment', 'title', 'description', 'default', 'examples']);
const KNOWN = new Set([
  ...ANNOTATIONS,
  '$ref',
  'type',
  'properties',
  'required',
  'additionalProperties',
  'propertyNames',
  'enum',
  'const',
  'pattern',
  'minimum',
  'maximum',
  'minLength',
  'minItems',
  'items',
  'uniqueItems',
  'allOf',
  'anyOf',
  'oneOf',
  'not',
  'if',
  'then',
  'else',
]);

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

function deepEqual(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

export function makeInterpreter(root: Record<string, unknown>) {
  const resolveRef = (ref: string): Schema => {
    if (!ref.startsWith('#/')) throw new Error(`unsupported $ref ${ref}`);
    let node: unknown = root;
    for (const part of ref.slice(2).split('/')) {
      if (!isObj(node) || !(part in node)) throw new Error(`dangling $ref ${ref}`);
      node = node[part];
    }
    return node as Schema;
  };

  const check = (schema: Schema, value: unknown, path: string, errors: SchemaError[]): void => {
    if (schema === true) return;
    if (schema === false) {
      errors.push({ path, keyword: 'false' });
      return;
    }
    for (const k of Object.keys(schema))
      if (!KNOWN.has(k)) throw new Error(`schema keyword ${k} at ${path || '(root)'} is not understood by the test interpreter`);
    const s = schema;
    if (typeof s.$ref === 'string') check(resolveRef(s.$ref), value, path, errors);
    if (s.type !== undefined) {
      const types = Array.isArray(s.type) ? s.type : [s.type];
      const t = typeOf(value);
      if (!types.includes(t) && !(t === 'integer' && types.includes('number'))) {
        errors.push({ path, keyword: 'type' });
        return; // the rest would only repeat it
      }
    }
    if (s.enum !== undefined && !(s.enum as unknown[]).some(e => deepEqual(e, value))) errors.push({ path, keyword: 'enum' });
    if ('const' in s && !deepEqual(s.const, value)) errors.push({ path, keyword: 'const' });
    if (typeof value === 'string') {
      if (typeof s.pattern === 'string' && !new RegExp(s.pattern, 'u').test(value)) errors.push({ path, keyword: 'pattern' });
      if (typeof s.minLength === 'number' && [...value].length < s.minLength) errors.push({ path, keyword: 'minLength' });
    }
    if (typeof value === 'number' && typeof s.minimum === 'number' && value < s.minimum) errors.push({ path, keyword: 'minimum' });
    if (typeof value === 'number' && typeof s.maximum === 'number' && value > s.maximum) errors.push({ path, keyword: 'maximum' });
    if (Array.isArray(value)) {
      if (typeof s.minItems === 'number' && value.length < s.minItems) errors.push({ path, keyword: 'minItems' });
      if (s.uniqueItems === true) {
        const seen = new Set(value.map(v => JSON.stringify(v)));
        if (seen.size !== value.length) errors.push({ path, keyword: 'uniqueItems' });
      }
      if (s.items !== undefined) value.forEach((v, i) => check(s.items as Schema, v, joinPath(path, i), errors));
    }
    if (isObj(value)) {
      const props = (s.properties ?? {}) as Record<string, Schema>;
      for (const r of (s.required ?? []) as string[]) {
        if (!Object.prototype.hasOwnProperty.call(value, r)) errors.push({ path: joinPath(path, r), keyword: 'required' });
      }
      for (const [k, v] of Object.entries(value)) {
        const kp = joinPath(path, k);
        if (s.propertyNames !== undefined) check(s.propertyNames as Schema, k, kp, errors);
        if (Object.prototype.hasOwnProperty.call(props, k)) check(props[k]!, v, kp, errors);
        else if (s.additionalProperties !== undefined) {
          const sub = s.additionalProperties as Schema;
          const before = errors.length;
          check(sub, v, kp, errors);
          if (sub === false && errors.length > before) errors[errors.length - 1]!.keyword = 'additionalProperties';
        }
      }
    }
    if (Array.isArray(s.allOf)) for (const sub of s.allOf as Schema[]) check(sub, value, path, errors);
    if (Array.isArray(s.anyOf)) {
      const branches = (s.anyOf as Schema[]).map(sub => {
        const e: SchemaError[] = [];
        check(sub, value, path, e);
        return e;
      });
      if (branches.every(b => b.length > 0)) errors.push({ path, keyword: 'anyOf' }, ...branches.flat());
    }
    if (Array.isArray(s.oneOf)) {
      const branches = (s.oneOf as Schema[]).map(sub => {
        const e: SchemaError[] = [];
        check(sub, value, path, e);
        return e;
      });
      const passing = branches.filter(b => b.length === 0).length;
      if (passing !== 1) errors.push({ path, keyword: 'oneOf' }, ...(passing === 0 ? branches.flat() : []));
    }
    if (s.not !== undefined) {
      const e: SchemaError[] = [];
      check(s.not as Schema, value, path, e);
      if (e.length === 0) errors.push({ path, keyword: 'not' });
    }
    if (s.if !== undefined) {
      const e: SchemaError[] = [];
      check(s.if as Schema, value, path, e);
      if (e.length === 0) {
        if (s.then !== undefined) check(s.then as Schema, value, path, errors);
      } else if (s.else !== undefined) check(s.else as Schema, value, path, errors);
    }
  };

  return (value: unknown): SchemaError[] => {
    const errors: SchemaError[] = [];
    check(root, value, '', errors);
    return errors;
  };
}
