/**
 * A foreground daemon ends with the processes that started it. Node has no
 * prctl(PR_SET_PDEATHSIG), and the direct parent is not enough: in
 * `npx mdevfs mount` the chain is npx → sh → node, and killing npx leaves
 * sh waiting on us. So every ancestor below PID 1 is remembered with its
 * start time (a reused pid is not the same process) and polled in /proc.
 */
import { readFileSync } from 'node:fs';

interface Ancestor {
  pid: number;
  start: string;
}

/** ppid and start time (fields 4 and 22) of /proc/<pid>/stat; undefined when gone or a zombie. */
function stat(pid: number): { ppid: number; start: string } | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name may hold spaces and parentheses: fields start after the last ')'.
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // A killed parent stays a zombie until its own parent reaps it.
  if (f[0] === 'Z' || f[0] === 'X') return undefined;
  return { ppid: Number(f[1]), start: f[19] ?? '' };
}

/** The chain of ancestors of this process, parent first, below PID 1. */
export function ancestors(): Ancestor[] {
  const out: Ancestor[] = [];
  for (let pid = process.ppid; pid > 1 && out.length < 64;) {
    const s = stat(pid);
    if (!s) break;
    out.push({ pid, start: s.start });
    pid = s.ppid;
  }
  return out;
}

// Taken when the CLI loads, not when the mount starts: a starter killed while
// the drivers load is then still noticed.
const atStart = ancestors();

/** The first remembered ancestor that is gone, if any. */
function gone(chain: readonly Ancestor[]): Ancestor | undefined {
  return chain.find(a => stat(a.pid)?.start !== a.start);
}

/** Call `onGone` once, when any process that started this one exits. */
export function watchAncestors(onGone: (pid: number) => void, everyMs = 250): () => void {
  const chain = atStart;
  const timer = setInterval(() => {
    const a = gone(chain);
    if (a) {
      clearInterval(timer);
      onGone(a.pid);
    }
  }, everyMs);
  timer.unref();
  return () => clearInterval(timer);
}
