/**
 * A scenario file (`--scenario <file>`, docs/control.md): a fixed story of
 * control requests, each played `at` ms after the tree is mounted. A step is
 * a control protocol request (control-protocol.ts) with its time; the file
 * is checked before anything is mounted, and a step the daemon refuses is
 * logged and the story goes on, as it would for a client.
 */
import { promises as fsp } from 'node:fs';
import type { MdevCore } from '../core/core.js';
import { errorMessage, firstLine, toMdevError } from '../core/errno.js';
import { runRequest } from './control-protocol.js';
import { UserError } from './errors.js';

const STEP_OPS = ['unplug', 'plug', 'fail', 'delay', 'clear-faults', 'set-available'] as const;

export interface ScenarioStep {
  at: number;
  request: Record<string, unknown>;
  /** "steps[2]", for messages. */
  where: string;
}

export interface Playing {
  stop(): void;
}

/** Read and check a scenario file: every problem is reported at once, with where it is. */
export async function loadScenario(file: string): Promise<ScenarioStep[]> {
  let doc: unknown;
  try {
    doc = JSON.parse(await fsp.readFile(file, 'utf8'));
  } catch (e) {
    throw new UserError(`--scenario ${file}: ${firstLine(errorMessage(e))}`);
  }
  const problems: string[] = [];
  const steps: ScenarioStep[] = [];
  const list = (doc as { steps?: unknown } | null)?.steps;
  if (doc === null || typeof doc !== 'object' || !Array.isArray(list)) {
    throw new UserError(`--scenario ${file}: must be an object with a "steps" array`);
  }
  list.forEach((s: unknown, i) => {
    const where = `steps[${i}]`;
    if (s === null || typeof s !== 'object' || Array.isArray(s)) return void problems.push(`${where}: must be an object`);
    const { at, ...request } = s as Record<string, unknown>;
    if (!(typeof at === 'number' && Number.isSafeInteger(at) && at >= 0)) problems.push(`${where}.at: must be a non-negative integer (ms)`);
    if (!(STEP_OPS as readonly unknown[]).includes(request.op)) problems.push(`${where}.op: must be one of ${STEP_OPS.join(', ')}`);
    steps.push({ at: at as number, request, where });
  });
  if (problems.length) throw new UserError(problems.map(p => `${file}: ${p}`).join('\n'));
  // Stable: steps at the same time keep the file's order.
  return steps.sort((a, b) => a.at - b.at);
}

function describe(req: Record<string, unknown>): string {
  const args = Object.entries(req)
    .filter(([k]) => k !== 'op')
    .map(([k, v]) => `${k}=${String(v)}`);
  return [String(req.op), ...args].join(' ');
}

/** Play `steps` from now, one after another; `stop()` cancels what is left. */
export function playScenario(core: MdevCore, steps: readonly ScenarioStep[], log: (m: string) => void, vlog: (m: string) => void): Playing {
  const start = Date.now();
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const next = async (i: number): Promise<void> => {
    if (stopped || i >= steps.length) return;
    const step = steps[i]!;
    const wait = start + step.at - Date.now();
    if (wait > 0) {
      await new Promise<void>(resolve => (timer = setTimeout(resolve, wait)));
      if (stopped) return;
    }
    try {
      await runRequest(core, step.request);
      vlog(`mdevfs: scenario ${step.where} (${describe(step.request)}) done`);
    } catch (e) {
      const err = toMdevError(e);
      log(`mdevfs: scenario ${step.where} (${describe(step.request)}): ${err.errno} (${firstLine(err.message)})`);
    }
    return next(i + 1);
  };
  void next(0);
  return {
    stop: () => {
      stopped = true;
      if (timer) clearTimeout(timer);
    },
  };
}
