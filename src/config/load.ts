import { readFile } from 'node:fs/promises';
import { basename, extname } from 'node:path';
import type { VendorPlugin } from '../core/api.js';
import { compileConfig, type CompileOptions } from './compile.js';
import { ConfigError } from './errors.js';
import { JsonSyntaxError, parseJson } from './json.js';
import type { ConfigDoc } from './types.js';
import { assertValidConfig } from './validate.js';

/**
 * Parse and validate config text. Throws a ConfigError: kind 'syntax' with
 * `file:line:column` for bad JSON, kind 'invalid' listing every problem (each
 * with its field path and line:column).
 */
export function parseConfig(text: string, file?: string): ConfigDoc {
  let parsed;
  try {
    parsed = parseJson(text);
  } catch (e) {
    if (!(e instanceof JsonSyntaxError)) throw e;
    const where = `${file ? file + ':' : ''}${e.line}:${e.column}`;
    throw new ConfigError(
      'syntax',
      `${where}: invalid JSON: ${e.reason}`,
      [{ path: '', message: `invalid JSON: ${e.reason}`, pos: { line: e.line, column: e.column } }],
      file,
    );
  }
  const doc = parsed.value;
  assertValidConfig(doc, { file, positions: parsed.positions });
  return doc;
}

/** Read, parse and validate a config file (see parseConfig); 'read' errors say why the file could not be read. */
export async function loadConfigDoc(file: string): Promise<ConfigDoc> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const why =
      err.code === 'ENOENT'
        ? 'no such file'
        : err.code === 'EACCES'
          ? 'permission denied'
          : err.code === 'EISDIR'
            ? 'is a directory'
            : err.message;
    throw new ConfigError(
      'read',
      `cannot read config file ${file}: ${why}${err.code ? ` (${err.code})` : ''}`,
      [{ path: '', message: `cannot read: ${why}` }],
      file,
    );
  }
  return parseConfig(text, file);
}

/**
 * `mdevfs mount --config <file>`: read, parse and fully validate a config file
 * and compile it into a VendorPlugin, ready for `core.loadPlugin`. Nothing is
 * registered until that plugin's init runs, and init registers all parents or
 * none. The plugin is named `doc.name`, else `config:<file basename>`.
 * Throws ConfigError (kind 'read' | 'syntax' | 'invalid').
 */
export async function loadConfigFile(file: string, opts: CompileOptions = {}): Promise<VendorPlugin> {
  const doc = await loadConfigDoc(file);
  return compileConfig(doc, { name: opts.name ?? doc.name ?? `config:${basename(file, extname(file))}` });
}
