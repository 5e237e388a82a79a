/**
 * Where the daemon's own messages go: stderr (or a log file), one line each,
 * so stdout stays the command's (`mount` prints its ready line there, `run`
 * leaves it to the client it runs).
 *
 * A Logger filters by level. `mdevfs mount` stamps each line with the time
 * and level; `mdevfs run` (and the library) keep the plain "mdevfs: …" lines.
 */
import { writeSync } from 'node:fs';
import { errorMessage } from '../core/errno.js';

export function stderrLine(line: string): void {
  process.stderr.write(line.endsWith('\n') ? line : line + '\n');
}

export const LOG_LEVELS = ['error', 'warn', 'info', 'debug'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface Logger {
  readonly level: LogLevel;
  enabled(level: LogLevel): boolean;
  error(message: string): void;
  warn(message: string): void;
  info(message: string): void;
  debug(message: string): void;
}

export interface LoggerOptions {
  /** Lines above this level are dropped (default info). */
  level?: LogLevel;
  /** Prefix each line with the ISO time and the level (and drop the "mdevfs: " the callers put first). */
  timestamps?: boolean;
  /** An open log file (appended to with write(2)); default stderr. */
  fd?: number;
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  const level = opts.level ?? 'info';
  const max = LOG_LEVELS.indexOf(level);
  const fd = opts.fd;
  const out = (line: string): void => {
    if (fd === undefined) return stderrLine(line);
    try {
      // Synchronous, so the last lines before process.exit() are not lost.
      writeSync(fd, line + '\n');
    } catch {
      /* a full disk must not take the daemon down */
    }
  };
  const emit = (l: LogLevel) => (message: string) => {
    if (LOG_LEVELS.indexOf(l) > max) return;
    const text = message.replace(/\n$/, '');
    out(opts.timestamps ? `${new Date().toISOString()} ${l.padEnd(5)} ${text.replace(/^mdevfs: /, '')}` : text);
  };
  return {
    level,
    enabled: l => LOG_LEVELS.indexOf(l) <= max,
    error: emit('error'),
    warn: emit('warn'),
    info: emit('info'),
    debug: emit('debug'),
  };
}

/** The logger of a daemon that has only `verbose` (mdevfs run): plain lines on stderr, -v for debug. */
export function verboseLogger(verbose: boolean | undefined): Logger {
  return createLogger({ level: verbose ? 'debug' : 'info' });
}

/**
 * Once a tree is mounted the daemon must not die from a stray exception (a
 * plugin's forgotten promise, say): clients would be left with a dead mount.
 * Log it instead, with the stack at debug level.
 */
export function logStrayErrors(logger: Logger | boolean | undefined): void {
  const log = typeof logger === 'object' ? logger : verboseLogger(logger);
  const internal = (e: unknown) =>
    log.error(`mdevfs: internal error: ${log.enabled('debug') && e instanceof Error ? e.stack : errorMessage(e)}`);
  process.on('uncaughtException', internal);
  process.on('unhandledRejection', internal);
}
