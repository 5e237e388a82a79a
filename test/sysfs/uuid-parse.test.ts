import t from 'tap';
import { parseCreateBuffer, isValidUuidPrefix } from '../../src/sysfs/uuid-parse.js';
import { errnoOf } from '../core/helpers.js';

const U = '83b8f4f2-509f-382f-3c1e-e6bfe0fa1001';

t.test('36 bytes without newline and 37 with are accepted', async t => {
  t.equal(parseCreateBuffer(U), U);
  t.equal(parseCreateBuffer(`${U}\n`), U);
  t.equal(parseCreateBuffer(Buffer.from(U)), U);
});

t.test('the 37th byte is never inspected', async t => {
  for (const tail of ['X', '\r', ' ', '\0', '-']) t.equal(parseCreateBuffer(U + tail), U, JSON.stringify(tail));
});

t.test('byte count outside 36..37 is EINVAL', async t => {
  t.equal(await errnoOf(() => parseCreateBuffer('')), 'EINVAL', 'zero length (the sysfs layer must short-circuit it)');
  t.equal(await errnoOf(() => parseCreateBuffer(U.slice(0, 35))), 'EINVAL');
  t.equal(await errnoOf(() => parseCreateBuffer(`${U}\n\n`)), 'EINVAL');
  t.equal(await errnoOf(() => parseCreateBuffer(`${U}${U}`)), 'EINVAL');
});

t.test('uppercase accepted, named lowercase; all-zero accepted', async t => {
  t.equal(parseCreateBuffer(U.toUpperCase()), U);
  t.equal(parseCreateBuffer('00000000-0000-0000-0000-000000000000'), '00000000-0000-0000-0000-000000000000');
});

t.test('the copy stops at an embedded NUL', async t => {
  const b = Buffer.from(`${U}\n`);
  b[10] = 0;
  t.equal(await errnoOf(() => parseCreateBuffer(b)), 'EINVAL');
});

t.test('other UUID spellings are EINVAL', async t => {
  for (const bad of [
    `{${U.slice(0, 34)}}`,
    ` ${U}`,
    `urn:uuid:${U}`.slice(0, 37),
    U.replace(/-/g, '').padEnd(36, '0'),
    U.replace('-', '_'),
    U.replace('f', 'g'),
    `${U.slice(0, 8)}${U.slice(9)}-`,
  ]) {
    t.equal(await errnoOf(() => parseCreateBuffer(bad)), 'EINVAL', JSON.stringify(bad));
  }
  t.notOk(isValidUuidPrefix(Buffer.from(U.slice(0, 35))));
  t.ok(isValidUuidPrefix(Buffer.from(U)));
});

t.test('a multi-byte character counts by bytes', async t => {
  // 35 chars + 'é' (2 bytes) = 37 bytes, but not a UUID.
  t.equal(await errnoOf(() => parseCreateBuffer(`${U.slice(0, 35)}é`)), 'EINVAL');
});
