/**
 * `uevent` files and what a write to one does: user space asks the kernel to
 * send an event for that object again (udevadm trigger does, to replay
 * devices). Today: lib/kobject_uevent.c kobject_synth_uevent — an action
 * word, optionally a UUID and KEY=VALUE pairs, anything else EINVAL; the
 * event carries SYNTH_UUID (0 without one) and SYNTH_ARG_<KEY>. 4.10:
 * uevent_store ignored what it could not parse, accepted only the bare
 * action word (no bind/unbind yet) and sent no SYNTH_ variables.
 */
import { MdevError } from '../core/errno.js';
import type { MdevCoreApi } from '../core/model.js';
import { parseUeventVars } from '../core/uevents.js';
import type { KAttr, KDir } from '../kernfs/index.js';
import { isValidUuidPrefix } from './uuid-parse.js';

const UUID_STRING_LEN = 36;
const ACTIONS = ['add', 'remove', 'change', 'move', 'online', 'offline', 'bind', 'unbind'];
/** 4.10's kobject_actions: KOBJ_BIND and KOBJ_UNBIND came in 4.14. */
const ACTIONS_4_10 = ACTIONS.slice(0, 6);

/** An event a write asks for: the action and the SYNTH_ variables, in order. */
export interface SynthRequest {
  action: string;
  env: Array<[string, string]>;
}

/** Drop one trailing '\n' or NUL, as kobject_action_type and kobject_action_args do. */
function chomp(s: string): string {
  return s.endsWith('\n') || s.endsWith('\0') ? s.slice(0, -1) : s;
}

const isAlnum = (c: string): boolean => /^[A-Za-z0-9]$/.test(c);

/** action_arg_word_end(): the end of an alphanumeric word that stops at `delim` or the end; -1 if empty or not alphanumeric. */
function wordEnd(s: string, from: number, delim: string): number {
  let i = from;
  while (i < s.length && s[i] !== delim) if (!isAlnum(s[i++]!)) return -1;
  return i === from ? -1 : i;
}

/** kobject_action_args(): "<UUID>[ KEY=VALUE]..." → SYNTH_UUID, SYNTH_ARG_KEY; undefined if malformed. */
function actionArgs(raw: string): Array<[string, string]> | undefined {
  const s = chomp(raw);
  if (s.length < UUID_STRING_LEN || !isValidUuidPrefix(Buffer.from(s, 'latin1'))) return undefined;
  const env: Array<[string, string]> = [['SYNTH_UUID', s.slice(0, UUID_STRING_LEN)]];
  let next = UUID_STRING_LEN;
  while (next < s.length) {
    if (s[next] !== ' ') return undefined;
    const key = next + 1;
    if (key >= s.length) return undefined;
    const eq = wordEnd(s, key, '=');
    if (eq < 0 || eq >= s.length || s[eq] !== '=') return undefined;
    const value = eq + 1;
    if (value >= s.length) return undefined;
    const end = wordEnd(s, value, ' ');
    if (end < 0) return undefined;
    env.push([`SYNTH_ARG_${s.slice(key, eq)}`, s.slice(value, end)]);
    next = end;
  }
  return env;
}

/** kobject_synth_uevent's parse; EINVAL for anything it refuses. */
export function parseSynthUevent(data: Buffer): SynthRequest {
  const raw = data.toString('latin1');
  const s = chomp(raw);
  const sp = s.indexOf(' ');
  const action = sp < 0 ? s : s.slice(0, sp);
  if (!ACTIONS.includes(action)) throw new MdevError('EINVAL', `uevent: unknown action ${JSON.stringify(action)}`);
  if (sp < 0) return { action, env: [['SYNTH_UUID', '0']] };
  // The arguments are counted from the original write, trailing newline included.
  const env = actionArgs(raw.slice(sp + 1));
  if (!env) throw new MdevError('EINVAL', 'uevent: incorrect action arguments');
  return { action, env };
}

/** 4.10's uevent_store: the exact action word, or nothing at all (and the write still succeeds). */
export function parseUevent410(data: Buffer): SynthRequest | undefined {
  const action = chomp(data.toString('latin1'));
  return ACTIONS_4_10.includes(action) ? { action, env: [] } : undefined;
}

/** Which object a uevent file belongs to: DEVPATH is its directory's path; no subsystem, no event (dev_uevent_filter). */
export interface UeventTarget {
  readonly dir: KDir;
  readonly subsystem: string | undefined;
}

export class UeventFiles {
  constructor(private readonly core: MdevCoreApi) {}

  /** A device's `uevent` (0644): its variables when read; a write sends an event with them. */
  add(target: UeventTarget, vars: () => string | Uint8Array | Promise<string | Uint8Array>): KAttr {
    return target.dir.attr('uevent', 0o644, { show: vars, store: d => this.#send(d, target, vars) });
  }

  /** The write-only `uevent` of a bus or a driver (0200). */
  addWriteOnly(target: UeventTarget): KAttr {
    return target.dir.attr('uevent', 0o200, { store: d => this.#send(d, target) });
  }

  async #send(data: Buffer, target: UeventTarget, vars?: () => string | Uint8Array | Promise<string | Uint8Array>): Promise<void> {
    const req = this.core.profile === 'legacy' ? parseUevent410(data) : parseSynthUevent(data);
    if (!req || target.subsystem === undefined || target.dir.dead) return;
    const fields: Record<string, string> = { ACTION: req.action, DEVPATH: target.dir.path(), SUBSYSTEM: target.subsystem };
    for (const [k, v] of req.env) fields[k] = v;
    // dev_uevent's variables follow the caller's: what the file shows.
    const shown = vars ? await vars() : '';
    const text = typeof shown === 'string' ? shown : Buffer.from(shown).toString('utf8');
    for (const [k, v] of parseUeventVars(text)) if (!(k in fields)) fields[k] = v;
    this.core.sendUevent(fields);
  }
}
