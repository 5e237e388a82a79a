/**
 * A strict JSON (RFC 8259) parser that remembers where every value starts, so
 * errors can say `file:line:column`. Node's JSON.parse does not give a position
 * for every syntax error, and never one for a value that parsed but is invalid.
 * Duplicate object keys are a syntax error here (JSON.parse silently keeps the
 * last one, which would hide a typo in a config).
 */

export interface SourcePos {
  /** 1-based. */
  line: number;
  /** 1-based, in UTF-16 code units. */
  column: number;
}

export class JsonSyntaxError extends Error {
  readonly line: number;
  readonly column: number;
  readonly reason: string;
  constructor(reason: string, pos: SourcePos) {
    super(`${pos.line}:${pos.column}: ${reason}`);
    this.name = 'JsonSyntaxError';
    this.reason = reason;
    this.line = pos.line;
    this.column = pos.column;
  }
}

export interface ParsedJson {
  value: unknown;
  /**
   * Where the field at a path such as 'parents[0].types[2].cost' starts: an
   * object member's key, an array element's value ('' is the root).
   */
  positions: Map<string, SourcePos>;
}

/** Render a path the way validation errors do: a.b[0].c; odd keys as ["a b"]. */
export function joinPath(base: string, key: string | number): string {
  if (typeof key === 'number') return `${base}[${key}]`;
  if (/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(key)) return base ? `${base}.${key}` : key;
  return `${base}[${JSON.stringify(key)}]`;
}

export function parseJson(text: string): ParsedJson {
  const positions = new Map<string, SourcePos>();
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;

  const posAt = (at: number): SourcePos => {
    let line = 1;
    let lineStart = 0;
    for (let k = 0; k < at && k < text.length; k++) {
      if (text.charCodeAt(k) === 10) {
        line++;
        lineStart = k + 1;
      }
    }
    return { line, column: at - lineStart + 1 };
  };
  const fail = (reason: string, at = i): never => {
    throw new JsonSyntaxError(reason, posAt(at));
  };
  const describe = (at: number): string => (at >= text.length ? 'end of input' : `${JSON.stringify(text[at])}`);

  const skipWs = (): void => {
    while (i < text.length) {
      const c = text.charCodeAt(i);
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) i++;
      else break;
    }
  };

  // Positions are recorded lazily as offsets and converted once at the end.
  const offsets: Array<[string, number]> = [];

  const parseString = (): string => {
    const start = i;
    i++; // opening quote
    let out = '';
    let run = i;
    for (;;) {
      if (i >= text.length) fail('unterminated string', start);
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        out += text.slice(run, i);
        i++;
        return out;
      }
      if (c < 0x20) fail('control character in string (escape it, e.g. \\n)');
      if (c === 0x5c) {
        out += text.slice(run, i);
        const e = text[i + 1];
        switch (e) {
          case '"':
            out += '"';
            break;
          case '\\':
            out += '\\';
            break;
          case '/':
            out += '/';
            break;
          case 'b':
            out += '\b';
            break;
          case 'f':
            out += '\f';
            break;
          case 'n':
            out += '\n';
            break;
          case 'r':
            out += '\r';
            break;
          case 't':
            out += '\t';
            break;
          case 'u': {
            const hex = text.slice(i + 2, i + 6);
            if (!/^[0-9a-fA-F]{4}$/.test(hex)) fail('bad \\u escape (needs 4 hex digits)');
            out += String.fromCharCode(parseInt(hex, 16));
            i += 4;
            break;
          }
          default:
            fail(`bad escape \\${e ?? ''}`);
        }
        i += 2;
        run = i;
        continue;
      }
      i++;
    }
  };

  const parseNumber = (): number => {
    const m = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(text.slice(i, i + 400));
    if (!m) fail(`unexpected ${describe(i)}`);
    i += m![0].length;
    return Number(m![0]);
  };

  const parseValue = (path: string, depth: number, record = true): unknown => {
    skipWs();
    if (depth > 256) fail('nesting too deep');
    if (record) offsets.push([path, i]);
    const c = text[i];
    if (c === '{') {
      i++;
      const obj: Record<string, unknown> = {};
      const seen = new Set<string>();
      skipWs();
      if (text[i] === '}') {
        i++;
        return obj;
      }
      for (;;) {
        skipWs();
        if (text[i] !== '"')
          fail(text[i] === '}' ? 'trailing comma before "}"' : `expected a double-quoted property name, found ${describe(i)}`);
        const keyAt = i;
        const key = parseString();
        if (seen.has(key)) fail(`duplicate key ${JSON.stringify(key)}`, keyAt);
        seen.add(key);
        skipWs();
        if (text[i] !== ':') fail(`expected ":" after property name, found ${describe(i)}`);
        i++;
        const memberPath = joinPath(path, key);
        offsets.push([memberPath, keyAt]);
        const v = parseValue(memberPath, depth + 1, false);
        Object.defineProperty(obj, key, { value: v, enumerable: true, writable: true, configurable: true });
        skipWs();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === '}') {
          i++;
          return obj;
        }
        fail(`expected "," or "}", found ${describe(i)}`);
      }
    }
    if (c === '[') {
      i++;
      const arr: unknown[] = [];
      skipWs();
      if (text[i] === ']') {
        i++;
        return arr;
      }
      for (;;) {
        skipWs();
        if (text[i] === ']') fail('trailing comma before "]"');
        arr.push(parseValue(joinPath(path, arr.length), depth + 1));
        skipWs();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === ']') {
          i++;
          return arr;
        }
        fail(`expected "," or "]", found ${describe(i)}`);
      }
    }
    if (c === '"') return parseString();
    if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) return parseNumber();
    if (text.startsWith('true', i)) {
      i += 4;
      return true;
    }
    if (text.startsWith('false', i)) {
      i += 5;
      return false;
    }
    if (text.startsWith('null', i)) {
      i += 4;
      return null;
    }
    if (c === undefined) return fail(path === '' ? 'empty document' : 'unexpected end of input');
    return fail(`unexpected ${describe(i)}`);
  };

  const value = parseValue('', 0);
  skipWs();
  if (i < text.length) fail(`unexpected ${describe(i)} after the document`);

  // One pass to convert offsets to line:column.
  offsets.sort((a, b) => a[1] - b[1]);
  let line = 1;
  let lineStart = 0;
  let k = 0;
  for (const [p, at] of offsets) {
    for (; k < at; k++)
      if (text.charCodeAt(k) === 10) {
        line++;
        lineStart = k + 1;
      }
    positions.set(p, { line, column: at - lineStart + 1 });
  }
  return { value, positions };
}
