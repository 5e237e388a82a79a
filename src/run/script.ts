/**
 * The namespace's mounts are made in batches, each one /bin/sh running
 * mount(8) and mkdir(1) in turn, not one child process per mount: a child
 * of this daemon costs a fork of the whole Node process and a round trip
 * through its event loop, which for the twenty-odd mounts of a run was most
 * of its start (test/bench/start.ts). Asynchronous on purpose: the caller is
 * the FUSE daemon, and a synchronous call into its own tree would deadlock
 * it (docs/fuse.md#self-deadlock).
 *
 * A step is fatal (the batch stops, and the run fails with "cannot <what>:
 * <the program's message>") or belongs to a lenient group: the group's first
 * failure is reported as a warning, its later steps are skipped, and the
 * group's `undo` (lazy unmounts) runs; the batch goes on.
 */
import { spawn } from 'node:child_process';
import { firstLine } from '../core/errno.js';

export interface ScriptStep {
  /** The program and its arguments (quoted for sh here)... */
  argv?: string[];
  /** ...or a command line, as is (built with shQuote). */
  sh?: string;
  /** For the message: "cannot <what>". */
  what: string;
  /** A lenient group's name (a shell identifier); absent: fatal. */
  group?: string;
}

export interface LenientGroup {
  name: string;
  /** Mount points to detach (umount -l, in this order) once a step of the group failed. */
  undo: string[];
}

/** What a batch reports: each lenient group that failed, with its message. */
export type ScriptWarnings = Map<string, string>;

/** `s` as one sh word. */
export function shQuote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

const MARK = '@@mdevfs';

/** The sh text of a batch (exported for tests). */
export function scriptText(steps: readonly ScriptStep[], groups: readonly LenientGroup[] = []): string {
  const lines: string[] = [];
  for (const g of groups) {
    lines.push(
      `failed_${g.name}=`,
      `fail_${g.name}() { failed_${g.name}=1; printf '\\n${MARK} warn ${g.name} %s\\n' "$1";` +
        g.undo.map(m => ` umount -l ${shQuote(m)} 2>/dev/null;`).join('') +
        ' }',
    );
  }
  for (const s of steps) {
    const cmd = s.sh ?? (s.argv ?? []).map(shQuote).join(' ');
    const what = shQuote(`cannot ${s.what}`);
    if (s.group) {
      lines.push(`[ -n "$failed_${s.group}" ] || out=$({ ${cmd}; } 2>&1) || fail_${s.group} ${what}": $out"`);
    } else {
      lines.push(`out=$({ ${cmd}; } 2>&1) || { printf '\\n${MARK} fatal %s\\n' ${what}": $out"; exit 1; }`);
    }
  }
  return lines.join('\n');
}

/**
 * Run a batch. Resolves with the failed lenient groups; rejects with the
 * first fatal step's one-line message. `fds` are passed on as fds 3, 4, ...
 */
export function runScript(steps: readonly ScriptStep[], groups: readonly LenientGroup[] = [], fds: number[] = []): Promise<ScriptWarnings> {
  if (steps.length === 0) return Promise.resolve(new Map<string, string>());
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', scriptText(steps, groups), 'mdevfs-run'], { stdio: ['ignore', 'pipe', 'pipe', ...fds] });
    let out = '';
    child.stdout!.on('data', d => (out += d));
    child.stderr!.on('data', d => (out += d));
    child.on('error', e => reject(new Error(`cannot run /bin/sh: ${e.message}`)));
    child.on('close', code => {
      const warnings: ScriptWarnings = new Map();
      let fatal: string | undefined;
      for (const line of out.split('\n')) {
        if (!line.startsWith(MARK)) continue;
        const [, kind, ...rest] = line.split(' ');
        if (kind === 'warn') warnings.set(rest[0]!, rest.slice(1).join(' '));
        else fatal = rest.join(' ');
      }
      if (code === 0) resolve(warnings);
      else reject(new Error(firstLine(fatal ?? `/bin/sh exited with status ${code}: ${out.trim()}`)));
    });
  });
}
