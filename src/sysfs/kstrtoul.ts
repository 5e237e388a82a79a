/**
 * lib/kstrtox.c kstrtoul() on a 64-bit kernel (= kstrtoull): optional '+',
 * radix fixup for base 0 ('0x' hex when a hex digit follows, leading '0'
 * octal, else decimal), at least one digit, at most one trailing '\n',
 * nothing else. The C string ends at the first NUL.
 */
import { MdevError } from '../core/errno.js';

const ULONG_MAX = (1n << 64n) - 1n;

function digitValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const lower = c | 0x20;
  if (lower >= 0x61 && lower <= 0x66) return lower - 0x61 + 10;
  return 99;
}

function isXDigit(c: number | undefined): boolean {
  return c !== undefined && digitValue(c) < 16;
}

/** Throws MdevError EINVAL on a parse error, ERANGE on overflow (as the kernel does). */
export function kstrtoul(input: Buffer | string, base = 0): bigint {
  let s = typeof input === 'string' ? Buffer.from(input, 'utf8') : input;
  const nul = s.indexOf(0);
  if (nul !== -1) s = s.subarray(0, nul);
  let i = 0;
  if (s[i] === 0x2b /* + */) i++;
  // _parse_integer_fixup_radix
  if (base === 0) {
    if (s[i] === 0x30) base = ((s[i + 1] ?? 0) | 0x20) === 0x78 && isXDigit(s[i + 2]) ? 16 : 8;
    else base = 10;
  }
  if (base === 16 && s[i] === 0x30 && ((s[i + 1] ?? 0) | 0x20) === 0x78) i += 2;
  // _parse_integer
  const b = BigInt(base);
  let value = 0n;
  let digits = 0;
  let overflow = false;
  for (; i < s.length; i++) {
    const v = digitValue(s[i]!);
    if (v >= base) break;
    value = value * b + BigInt(v);
    if (value > ULONG_MAX) overflow = true;
    digits++;
  }
  if (digits === 0) throw new MdevError('EINVAL', 'kstrtoul: no digits');
  if (overflow) throw new MdevError('ERANGE', 'kstrtoul: value out of range');
  if (s[i] === 0x0a) i++;
  if (i !== s.length) throw new MdevError('EINVAL', 'kstrtoul: trailing characters');
  return value;
}

/**
 * lib/kstrtox.c kstrtobool(): the first character decides (y Y t T 1 true,
 * n N f F 0 false), "on"/"off" by the second; anything else is EINVAL.
 */
export function kstrtobool(input: Buffer | string): boolean {
  const s = typeof input === 'string' ? input : input.toString('latin1');
  const c = s[0];
  if (c !== undefined && 'yYtT1'.includes(c)) return true;
  if (c !== undefined && 'nNfF0'.includes(c)) return false;
  if (c === 'o' || c === 'O') {
    if (s[1] === 'n' || s[1] === 'N') return true;
    if (s[1] === 'f' || s[1] === 'F') return false;
  }
  throw new MdevError('EINVAL', 'kstrtobool: not a boolean');
}
