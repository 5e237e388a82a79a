/**
 * `mdevfs ctl <verb>`: drive a running daemon through its control socket
 * (docs/control.md). Inside `mdevfs run` it finds the run's daemon from
 * MDEVFS_CTL; for `mdevfs mount <dir>`, `--at <dir>` names it.
 */
import { type Command, InvalidArgumentError } from 'commander';
import type { Uevent } from '../../core/api.js';
import type { ControlState } from '../../core/control.js';
import { errorMessage, toMdevError, type MdevError } from '../../core/errno.js';
import type { Fault, FaultOp } from '../../core/faults.js';
import { FAULT_OPS } from '../../core/faults.js';
import type { ControlClient } from '../../daemon/control-client.js';
import { UserError } from '../../daemon/errors.js';

interface Where {
  at?: string;
  socket?: string;
}

interface Filters {
  parent?: string;
  type?: string;
  uuid?: string;
  count?: number;
}

function count(v: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive integer');
  return n;
}

function nonNegative(v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(n)) throw new InvalidArgumentError('expected a non-negative integer');
  return n;
}

function faultOp(v: string): FaultOp {
  if (!(FAULT_OPS as readonly string[]).includes(v)) throw new InvalidArgumentError(`expected one of ${FAULT_OPS.join(', ')}`);
  return v as FaultOp;
}

async function client(cmd: Command): Promise<ControlClient> {
  const o = cmd.optsWithGlobals<Where>();
  // Loaded on use, as every command loads the layers it drives (docs/architecture.md).
  const { ControlClient } = await import('../../daemon/control-client.js');
  if (o.socket) return new ControlClient(o.socket);
  if (o.at) return ControlClient.forMount(o.at);
  return ControlClient.fromEnv();
}

/** A refusal by the daemon: "<verb>: ENODEV (no parent named x)". */
async function run<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof UserError) throw e;
    const err: MdevError = toMdevError(e);
    throw new UserError(`${what}: ${err.errno}${err.message && err.message !== err.errno ? ` (${errorMessage(err)})` : ''}`);
  }
}

function where(cmd: Command): Command {
  return cmd
    .option('--at <dir>', 'the daemon serving the tree mounted at <dir> (mdevfs mount); default: $MDEVFS_CTL, set inside mdevfs run')
    .option('--socket <path>', 'the control socket itself');
}

function filters(cmd: Command): Command {
  return cmd
    .option('--parent <parent>', 'only calls on this parent')
    .option('--type <type>', 'only calls on this type (e.g. mtty-2)')
    .option('--uuid <uuid>', 'only calls on this device')
    .option('--count <n>', 'how many matching calls (default 1)', count);
}

function showFault(f: Fault): string {
  const parts = [`fault ${f.id}: ${f.op}`];
  for (const k of ['parent', 'type', 'uuid'] as const) if (f[k]) parts.push(`${k}=${f[k]}`);
  if (f.delayMs !== undefined) parts.push(`delay=${f.delayMs}ms`);
  if (f.errno) parts.push(`errno=${f.errno}`);
  parts.push(`remaining=${f.remaining}`);
  return parts.join(' ');
}

function showState(s: ControlState): string {
  const out: string[] = [];
  for (const p of s.parents) {
    out.push(`parent ${p.name} ${p.state} (/sys/${p.path})`);
    for (const t of p.types) {
      const held = t.heldByTenant ? `, ${t.heldByTenant} held by another tenant` : '';
      out.push(`  type ${t.id}: ${t.available} available${held}; devices: ${t.devices.join(' ') || '-'}`);
    }
  }
  for (const d of s.devices) {
    out.push(
      `device ${d.uuid} ${d.parent}/${d.type} ${d.state} driver=${d.driver ?? '-'} group=${d.iommuGroup ?? '-'} open=${d.openCount}`,
    );
  }
  for (const f of s.faults) out.push(showFault(f));
  return out.join('\n');
}

function showEvent(ev: Uevent): string {
  const { ACTION, DEVPATH, SUBSYSTEM, SEQNUM, ...rest } = ev;
  const extra = Object.entries(rest).map(([k, v]) => `${k}=${String(v)}`);
  return [`${SEQNUM} ${ACTION} ${DEVPATH} (${SUBSYSTEM})`, ...extra].join(' ');
}

export function registerCtl(program: Command): void {
  const ctl = where(
    program
      .command('ctl')
      .description('control a running mdevfs daemon: hot-plug, faults, capacity, state, events')
      .addHelpText(
        'after',
        `
Inside mdevfs run the run's daemon is found by itself (MDEVFS_CTL); for
mdevfs mount <dir>, give --at <dir>. The protocol, for clients in other
languages, is in docs/control.md.

Examples:
  mdevfs ctl --at /tmp/sys unplug mtty           # devices removed first, then the parent
  mdevfs ctl --at /tmp/sys plug mtty
  mdevfs ctl --at /tmp/sys fail create --type mtty-2 --errno ENOSPC --count 2
  mdevfs ctl --at /tmp/sys delay remove 3000     # the next remove waits 3 s
  mdevfs ctl --at /tmp/sys set-available mtty-2 0
  mdevfs ctl --at /tmp/sys events --json
  mdevfs run -- sh -c 'mdevfs ctl unplug mtty && mdevctl types'`,
      ),
  );
  const out = (s: string): void => void process.stdout.write(`${s}\n`);

  where(ctl.command('unplug').description('the vendor unregisters <parent>: its devices are removed first').argument('<parent>')).action(
    async (parent: string, _o, cmd: Command) => {
      const c = await client(cmd);
      await run(`unplug ${parent}`, () => c.unplug(parent));
    },
  );
  where(ctl.command('plug').description('the vendor registers an unplugged <parent> again').argument('<parent>')).action(
    async (parent: string, _o, cmd: Command) => {
      const c = await client(cmd);
      await run(`plug ${parent}`, () => c.plug(parent));
    },
  );
  where(
    filters(
      ctl
        .command('fail')
        .description(
          `the next matching <op> calls fail with --errno, in the vendor's place (op: ${FAULT_OPS.join(', ')}); prints the fault`,
        )
        .argument('<op>', 'the call', faultOp)
        .requiredOption('--errno <name>', 'the errno, e.g. ENOSPC'),
    ),
  ).action(async (op: FaultOp, o: Filters & { errno: string }, cmd: Command) => {
    const c = await client(cmd);
    const { errno, ...f } = o;
    out(showFault(await run(`fail ${op}`, () => c.fail(op, errno, pick(f)))));
  });
  where(
    filters(
      ctl
        .command('delay')
        .description('the next matching <op> calls wait <ms> first (then go on, or fail with --errno); prints the fault')
        .argument('<op>', 'the call', faultOp)
        .argument('<ms>', 'milliseconds', nonNegative)
        .option('--errno <name>', 'then fail with this errno'),
    ),
  ).action(async (op: FaultOp, ms: number, o: Filters & { errno?: string }, cmd: Command) => {
    const c = await client(cmd);
    out(showFault(await run(`delay ${op}`, () => c.delay(op, ms, pick(o)))));
  });
  where(ctl.command('clear-faults').description('drop a pending fault (or all of them)').argument('[id]', 'the fault', count)).action(
    async (id: number | undefined, _o, cmd: Command) => {
      const c = await client(cmd);
      await run('clear-faults', () => c.clearFaults(id));
    },
  );
  where(
    ctl
      .command('set-available')
      .description('<type> shows <n> available instances: another tenant takes (or gives back) the rest')
      .argument('<type>', 'a type id, e.g. mtty-2')
      .argument('<n>', 'instances', nonNegative)
      .option('--parent <parent>', 'the parent, when several have the type'),
  ).action(async (type: string, n: number, o: { parent?: string }, cmd: Command) => {
    const c = await client(cmd);
    await run(`set-available ${type}`, () => c.setAvailable(type, n, o.parent));
  });
  where(ctl.command('state').description('parents, types, devices, groups and pending faults').option('--json', 'as JSON')).action(
    async (o: { json?: boolean }, cmd: Command) => {
      const c = await client(cmd);
      const s = await run('state', () => c.state());
      out(o.json ? JSON.stringify(s, null, 2) : showState(s));
    },
  );
  where(
    ctl
      .command('events')
      .description('print the uevents as they happen (until interrupted, or --count of them)')
      .option('--json', 'one JSON object a line, keys in kernel order')
      .option('--count <n>', 'exit after n events', count),
  ).action(async (o: { json?: boolean; count?: number }, cmd: Command) => {
    const c = await client(cmd);
    let seen = 0;
    let done = false;
    const held: { stream?: { close(): void } } = {};
    const stream = await run('events', () =>
      c.events(ev => {
        if (done) return;
        out(o.json ? JSON.stringify(ev) : showEvent(ev));
        if (o.count !== undefined && ++seen >= o.count) {
          done = true;
          held.stream?.close();
        }
      }),
    );
    held.stream = stream;
    if (done) stream.close();
    // On stderr, so that a script can wait for it: every event from here on is printed.
    process.stderr.write('mdevfs: listening for uevents\n');
    const stop = (): void => stream.close();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    await stream.closed;
  });
}

function pick(o: Filters & { errno?: string }): Filters & { errno?: string } {
  const r: Filters & { errno?: string } = {};
  for (const k of ['parent', 'type', 'uuid', 'count', 'errno'] as const) if (o[k] !== undefined) (r as Record<string, unknown>)[k] = o[k];
  return r;
}
