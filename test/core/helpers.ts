/** Shared fixtures for the core's unit tests. */
import { MdevCore } from '../../src/core/core.js';
import type { MdevDevice, MdevType, Parent, ParentDeviceSpec, ParentOps, Profile, Uevent } from '../../src/core/api.js';
import type { CoreChange, CoreOptions } from '../../src/core/model.js';
import { sleep, uuid } from '../helpers/util.js';

/** A deterministic, valid UUID per number. */
export { uuid };

export interface Harness {
  core: MdevCore;
  uevents: Uevent[];
  changes: CoreChange[];
  /** Each change rendered when it was emitted (devices mutate afterwards). */
  snapshots: Array<{ uuid?: string; text: string }>;
  logs: string[];
}

function render(c: CoreChange): { uuid?: string; text: string } {
  if (c.kind === 'group-removed') return { text: `${c.kind} ${c.group}` };
  if (c.kind === 'driver-added' || c.kind === 'driver-removed') return { text: `${c.kind} ${c.driver}` };
  if (c.kind === 'parent-added' || c.kind === 'parent-removed') return { text: `${c.kind} ${c.parent.name}` };
  if (c.kind === 'pci') {
    const p = c.device;
    return { text: `pci ${p.name}: ${p.state}${p.linked ? ' +linked' : ''}${p.driver ? ` drv=${p.driver}` : ''} vfs=${p.numVfs}` };
  }
  const d = c.device;
  return {
    uuid: d.uuid,
    text: `${c.step}: ${d.state}${d.hasRemoveFile ? ' +remove' : ''}${d.typeLinked ? ' +type' : ''}${d.boundDriver ? ` drv=${d.boundDriver}` : ''}${d.iommuGroup !== undefined ? ` grp=${d.iommuGroup}` : ''}${d.vfioGroupMinor !== undefined ? ` vfiogrp=${d.vfioGroupMinor}` : ''}${d.vfioDevIndex !== undefined ? ` vfio${d.vfioDevIndex}` : ''}${d.openCount ? ` open=${d.openCount}` : ''}`,
  };
}

export function harness(profile: Profile = 'modern', opts: CoreOptions = {}): Harness {
  const core = new MdevCore({ profile, ...opts });
  const h: Harness = { core, uevents: [], changes: [], snapshots: [], logs: [] };
  core.on('uevent', e => h.uevents.push(e));
  core.on('change', c => {
    h.changes.push(c);
    h.snapshots.push(render(c));
  });
  core.on('log', m => h.logs.push(m));
  return h;
}

export function spec(name = 'mtty', extra: Partial<ParentDeviceSpec> = {}): ParentDeviceSpec {
  return { path: `devices/virtual/${name}/${name}`, typePrefix: name, subsystem: { class: name }, ...extra };
}

/** Parent ops with a core counter of `maxInstances` (default 4) unless overridden. */
export function ops(extra: Partial<ParentOps> = {}): ParentOps {
  return {
    driver: 'mtty',
    deviceApi: 'vfio-pci',
    types: [{ id: '1' }, { id: '2' }],
    maxInstances: 4,
    create() {},
    remove() {},
    ...extra,
  };
}

export async function register(
  h: Harness,
  name = 'mtty',
  extraOps: Partial<ParentOps> = {},
  extraSpec: Partial<ParentDeviceSpec> = {},
): Promise<{ parent: Parent; type: MdevType }> {
  const parent = await h.core.host.registerDevice(spec(name, extraSpec), ops({ driver: name, ...extraOps }));
  return { parent, type: parent.types[0]! };
}

/** The errno an operation fails with, or undefined if it succeeds. */
export async function errnoOf(op: Promise<unknown> | (() => unknown)): Promise<string | undefined> {
  try {
    await (typeof op === 'function' ? op() : op);
    return undefined;
  } catch (e) {
    const errno = (e as { errno?: unknown }).errno;
    return typeof errno === 'string' ? errno : `not an MdevError: ${String(e)}`;
  }
}

export interface Deferred<T = void> {
  promise: Promise<T>;
  resolve(v: T): void;
  reject(e: unknown): void;
}

export function deferred<T = void>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Let queued promise callbacks and timers of 0 ms run. */
export const tick = (ms = 0): Promise<void> => sleep(ms);

/** Uevents without SEQNUM, for order comparisons. */
export const actions = (evs: Uevent[]): string[] => evs.map(e => `${e.ACTION} ${e.DEVPATH}${e.DRIVER ? ` ${e.DRIVER}` : ''}`);

/** The device's state at each step the core announced it, with group events interleaved. */
export function deviceTimeline(h: Harness, dev: MdevDevice | string): string[] {
  const id = typeof dev === 'string' ? dev : dev.uuid;
  return h.snapshots.filter(s => s.uuid === id || s.text.startsWith('group-')).map(s => s.text);
}

/** Forget recorded events. */
export function clear(h: Harness): void {
  h.uevents.length = 0;
  h.changes.length = 0;
  h.snapshots.length = 0;
  h.logs.length = 0;
}
