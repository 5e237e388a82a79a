import type { SourcePos } from './json.js';

/** One problem in a config document, at a field path such as 'parents[0].types[2].cost'. */
export interface ConfigIssue {
  /** '' for the document itself. */
  path: string;
  message: string;
  /** Where the field (or, for a missing one, its object) starts in the file, when known. */
  pos?: SourcePos;
}

/** 'file:line:col: path: message' (parts that are unknown are left out). */
export function formatIssue(issue: ConfigIssue, file?: string): string {
  const where = [file, issue.pos ? `${issue.pos.line}:${issue.pos.column}` : undefined].filter(Boolean).join(':');
  const path = issue.path === '' ? '(document)' : issue.path;
  return `${where ? where + ': ' : ''}${path}: ${issue.message}`;
}

export type ConfigErrorKind = 'read' | 'syntax' | 'invalid';

/**
 * Why a config could not be read, parsed or validated. For 'invalid', `issues`
 * holds every problem found (all of them, not just the first) and the message
 * lists them one per line.
 */
export class ConfigError extends Error {
  readonly kind: ConfigErrorKind;
  readonly issues: readonly ConfigIssue[];
  readonly file: string | undefined;
  constructor(kind: ConfigErrorKind, message: string, issues: readonly ConfigIssue[] = [], file?: string) {
    super(message);
    this.name = 'ConfigError';
    this.kind = kind;
    this.issues = issues;
    this.file = file;
  }

  static invalid(issues: readonly ConfigIssue[], file?: string): ConfigError {
    const n = issues.length;
    const header = `invalid mdevfs config${file ? ' ' + file : ''} (${n} error${n === 1 ? '' : 's'}):`;
    return new ConfigError('invalid', [header, ...issues.map(i => '  ' + formatIssue(i, file))].join('\n'), issues, file);
  }
}
