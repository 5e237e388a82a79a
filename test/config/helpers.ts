// Shared helpers for the config tests: load a config into a fresh core.
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { Test } from 'tap';
import { MdevCore } from '../../src/core/core.js';
import type { MdevType } from '../../src/core/api.js';
import type { CoreDevice } from '../../src/core/model.js';
import { compileConfig } from '../../src/config/compile.js';
import type { ConfigDoc } from '../../src/config/types.js';
import { uuid } from '../helpers/util.js';

export const FIX = fileURLToPath(new URL('../fixtures/config/', import.meta.url));

export async function fixture(name: string): Promise<ConfigDoc> {
  return JSON.parse(await readFile(FIX + name, 'utf8')) as ConfigDoc;
}

export async function loaded(doc: unknown, opts: { profile?: 'modern' | 'legacy' } = {}): Promise<MdevCore> {
  const core = new MdevCore(opts);
  await core.loadPlugin(compileConfig(doc));
  return core;
}

let seq = 0;
/** A fresh UUID for every call (uuid(1), uuid(2), ... over the whole test file). */
export function freshUuid(): string {
  return uuid(++seq);
}

export async function createN(core: MdevCore, type: MdevType, n: number): Promise<CoreDevice[]> {
  const out: CoreDevice[] = [];
  for (let i = 0; i < n; i++) out.push(await core.create(type, freshUuid()));
  return out;
}

/** Assert that `p` rejects with an errno-carrying error. */
export async function rejectsErrno(t: Test, p: Promise<unknown>, errno: string, what: string): Promise<void> {
  try {
    await p;
    t.fail(`${what}: expected ${errno}, but it succeeded`);
  } catch (e) {
    t.equal((e as { errno?: unknown }).errno, errno, `${what}: ${errno}`);
  }
}
