/**
 * Attribute value templates: `{name}` is replaced by a variable, `{{` and `}}`
 * are a literal brace. Any other brace is an error (so a typo in a placeholder
 * name is caught when the file is validated, not at the first read).
 */

export type TemplatePart = string | { name: string };

export type TemplateParse = { ok: true; parts: TemplatePart[] } | { ok: false; error: string };

export function parseTemplate(s: string): TemplateParse {
  const parts: TemplatePart[] = [];
  let lit = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '{') {
      if (s[i + 1] === '{') {
        lit += '{';
        i++;
        continue;
      }
      const end = s.indexOf('}', i + 1);
      const name = end < 0 ? '' : s.slice(i + 1, end);
      if (end < 0 || !/^[a-z_][a-z0-9_]*$/.test(name)) {
        return { ok: false, error: `unescaped "{" at offset ${i} (write "{{" for a literal brace, or a placeholder such as {uuid})` };
      }
      if (lit) {
        parts.push(lit);
        lit = '';
      }
      parts.push({ name });
      i = end;
      continue;
    }
    if (c === '}') {
      if (s[i + 1] === '}') {
        lit += '}';
        i++;
        continue;
      }
      return { ok: false, error: `unescaped "}" at offset ${i} (write "}}" for a literal brace)` };
    }
    lit += c;
  }
  if (lit) parts.push(lit);
  return { ok: true, parts };
}

/** The placeholder names a template uses. */
export function templateNames(parts: readonly TemplatePart[]): string[] {
  return parts.filter((p): p is { name: string } => typeof p !== 'string').map(p => p.name);
}

export function renderTemplate(parts: readonly TemplatePart[], vars: Readonly<Record<string, string>>): string {
  let out = '';
  for (const p of parts) out += typeof p === 'string' ? p : (vars[p.name] ?? '');
  return out;
}

/** A literal string as a template that renders to exactly it. */
export function escapeTemplate(s: string): string {
  return s.replace(/[{}]/g, c => c + c);
}
