import t from 'tap';
import { kstrtoul } from '../../src/sysfs/kstrtoul.js';
import { errnoOf } from '../core/helpers.js';

t.test('accepted forms (lib/kstrtox.c, base 0)', async t => {
  const ok: Array<[string, bigint]> = [
    ['1', 1n],
    ['1\n', 1n],
    ['+1', 1n],
    ['0x1', 1n],
    ['0X1f', 31n],
    ['010', 8n],
    ['0', 0n],
    ['0\n', 0n],
    ['2', 2n],
    ['42', 42n],
    ['+0x10', 16n],
    ['00', 0n],
    ['18446744073709551615', 18446744073709551615n],
    ['0xffffffffffffffff', 18446744073709551615n],
    ['1\0garbage', 1n],
  ];
  for (const [s, v] of ok) t.equal(kstrtoul(s), v, JSON.stringify(s));
});

t.test('rejected forms', async t => {
  const bad = ['y', 'yes', 'true', '-1', ' 1', '1 ', '1\n\n', '\n', '', '+', '0x', '08', '1x', '0xg', '++1', '1.0', '\n1'];
  for (const s of bad) t.equal(await errnoOf(() => kstrtoul(s)), 'EINVAL', JSON.stringify(s));
});

t.test('overflow is ERANGE', async t => {
  t.equal(await errnoOf(() => kstrtoul('18446744073709551616')), 'ERANGE');
  t.equal(await errnoOf(() => kstrtoul('0x10000000000000000')), 'ERANGE');
});

t.test('explicit bases', async t => {
  t.equal(kstrtoul('ff', 16), 255n);
  t.equal(kstrtoul('0xff', 16), 255n);
  t.equal(kstrtoul('17', 8), 15n);
  t.equal(await errnoOf(() => kstrtoul('8', 8)), 'EINVAL');
});
