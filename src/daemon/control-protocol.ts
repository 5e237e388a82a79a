/**
 * The control protocol's requests (docs/control.md): one JSON object in, one
 * JSON reply out, `{"ok":true,…}` or `{"ok":false,"errno":"ENODEV","message":"…"}`.
 * This file checks a request and runs it on the core; the socket is
 * control-socket.ts.
 */
import type { MdevType } from '../core/api.js';
import type { MdevCore } from '../core/core.js';
import { MdevError, errorMessage, toMdevError } from '../core/errno.js';
import { FAULT_OPS, type FaultOp, type FaultSpec } from '../core/faults.js';

/** Bumped when a request or reply changes incompatibly. */
export const PROTOCOL_VERSION = 1;

export type Reply = ({ ok: true } & Record<string, unknown>) | { ok: false; errno: string; message: string };

type Req = Record<string, unknown>;

const bad = (why: string): never => {
  throw new MdevError('EINVAL', why);
};

function str(req: Req, key: string, required: true): string;
function str(req: Req, key: string, required?: boolean): string | undefined;
function str(req: Req, key: string, required = false): string | undefined {
  const v = req[key];
  if (v === undefined && !required) return undefined;
  if (typeof v !== 'string' || v === '') return bad(`"${key}" must be a non-empty string`);
  return v;
}

function int(req: Req, key: string, required: boolean): number | undefined {
  const v = req[key];
  if (v === undefined && !required) return undefined;
  if (!(typeof v === 'number' && Number.isSafeInteger(v))) return bad(`"${key}" must be an integer`);
  return v;
}

/** A type by id; `parent` picks one when several parents have it (ENODEV: none, EINVAL: ambiguous). */
export function findType(core: MdevCore, id: string, parent?: string): MdevType {
  const found: MdevType[] = [];
  for (const p of core.parents()) {
    if (parent !== undefined && p.name !== parent) continue;
    for (const t of p.types) if (t.id === id) found.push(t);
  }
  if (found.length === 0) throw new MdevError('ENODEV', `no type ${id}${parent ? ` on ${parent}` : ''}`);
  if (found.length > 1) throw new MdevError('EINVAL', `type ${id} is on ${found.map(t => t.parent.name).join(', ')}: name the parent`);
  return found[0]!;
}

function faultSpec(req: Req, delay: boolean): FaultSpec {
  const call = str(req, 'call', true);
  if (!(FAULT_OPS as readonly string[]).includes(call)) bad(`"call" must be one of ${FAULT_OPS.join(', ')}`);
  const spec: FaultSpec = { op: call as FaultOp };
  for (const k of ['parent', 'type', 'uuid'] as const) {
    const v = str(req, k);
    if (v !== undefined) spec[k] = v;
  }
  const errno = str(req, 'errno', !delay);
  if (errno !== undefined) spec.errno = errno as FaultSpec['errno'];
  const ms = int(req, 'ms', delay);
  if (ms !== undefined) spec.delayMs = ms;
  const count = int(req, 'count', false);
  if (count !== undefined) spec.count = count;
  return spec;
}

/** Run one request (not `events`, which the socket streams). */
export async function runRequest(core: MdevCore, req: Req): Promise<Record<string, unknown>> {
  switch (req.op) {
    case 'ping':
      return { version: PROTOCOL_VERSION, profile: core.profile };
    case 'unplug':
      await core.unplug(str(req, 'parent', true));
      return {};
    case 'plug':
      await core.plug(str(req, 'parent', true));
      return {};
    case 'fail':
      return { fault: core.faults.add(faultSpec(req, false)) };
    case 'delay':
      return { fault: core.faults.add(faultSpec(req, true)) };
    case 'clear-faults':
      core.faults.clear(int(req, 'id', false));
      return {};
    case 'set-available': {
      const type = findType(core, str(req, 'type', true), str(req, 'parent'));
      core.setAvailable(type, int(req, 'available', true)!);
      return { available: core.availableInstances(type) };
    }
    case 'state':
      return { state: core.controlState() };
    default:
      return bad(`unknown op ${JSON.stringify(req.op)}`);
  }
}

/** A request line → its reply; never throws. */
export async function handleLine(core: MdevCore, line: string): Promise<Reply> {
  try {
    let req: unknown;
    try {
      req = JSON.parse(line);
    } catch (e) {
      return bad(`not JSON: ${errorMessage(e)}`);
    }
    if (req === null || typeof req !== 'object' || Array.isArray(req)) return bad('a request is a JSON object');
    return { ok: true, ...(await runRequest(core, req as Req)) };
  } catch (e) {
    const err = toMdevError(e);
    return { ok: false, errno: err.errno, message: err.message };
  }
}
