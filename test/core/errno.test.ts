import t from 'tap';
import { MdevError, toMdevError, errnoNumber, errnoName } from '../../src/core/errno.js';

t.test('errno names map to Linux numbers', async t => {
  t.equal(errnoNumber('EUSERS'), 87);
  t.equal(errnoNumber('EEXIST'), 17);
  t.equal(errnoName(-28), 'ENOSPC');
});

t.test('anything thrown becomes an MdevError', async t => {
  t.equal(toMdevError(new MdevError('ENOSPC')).errno, 'ENOSPC');
  t.equal(toMdevError({ errno: 'EBUSY' }).errno, 'EBUSY');
  t.equal(toMdevError({ errno: 87 }).errno, 'EUSERS');
  t.equal(toMdevError(new Error('boom')).errno, 'EIO');
  t.equal(toMdevError('ENODEV').errno, 'ENODEV');
  t.equal(toMdevError(undefined, 'EINVAL').errno, 'EINVAL');
  t.equal(new MdevError('EUSERS').code, 87);
});
