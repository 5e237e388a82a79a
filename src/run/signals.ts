/**
 * The signals a run passes on to its command, and how to tell a terminal's
 * from one sent to mdevfs run alone: a terminal's SIGINT (Ctrl-C) or SIGHUP
 * goes to its whole foreground process group, the command included, so
 * passing it on would make it two.
 */
import { promises as fsp } from 'node:fs';

export const RELAYED_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
export type RelayedSignal = (typeof RELAYED_SIGNALS)[number];

/** Whether this process is in the foreground process group of its controlling terminal (/proc/self/stat: pgrp, tty_nr, tpgid). */
export async function inTerminalForeground(): Promise<boolean> {
  try {
    const stat = await fsp.readFile('/proc/self/stat', 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const [pgrp, ttyNr, tpgid] = [Number(f[2]), Number(f[4]), Number(f[5])];
    return ttyNr !== 0 && tpgid > 0 && pgrp === tpgid;
  } catch {
    return false;
  }
}
