import os from 'node:os';
import t from 'tap';
import {
  MdevError,
  errnoName,
  errnoNumber,
  errorMessage,
  isErrnoName,
  toMdevError,
  userErrno,
  type ErrnoName,
} from '../../src/core/errno.js';

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

t.test('every errno name of os.constants.errno, with its number', async t => {
  for (const [name, n] of Object.entries(os.constants.errno)) {
    t.ok(isErrnoName(name), `${name} is an ErrnoName`);
    t.equal(errnoNumber(name as ErrnoName), n, name);
    t.equal(errnoName(n) && errnoNumber(errnoName(n)!), n, `${n} has a name`);
  }
});

t.test('names Node lacks, and the kernel-internal ones that reach user space mapped', async t => {
  // include/uapi/asm-generic/errno.h
  for (const [name, n] of [
    ['EUSERS', 87],
    ['ENOKEY', 126],
    ['EKEYREJECTED', 129],
    ['ERFKILL', 132],
    ['EHWPOISON', 133],
  ] as const) {
    t.equal(errnoNumber(name), n, name);
    t.equal(userErrno(name), n);
    t.equal(errnoName(n), name);
  }
  // include/linux/errno.h, and what user space gets instead
  for (const [name, n, user] of [
    ['ENOIOCTLCMD', 515, 'ENOTTY'],
    ['EPROBE_DEFER', 517, 'EAGAIN'],
    ['ENOTSUPP', 524, 'EOPNOTSUPP'],
  ] as const) {
    t.equal(errnoNumber(name), n, name);
    t.equal(errnoName(-n), name);
    t.equal(userErrno(name), errnoNumber(user), `${name} → ${user}`);
  }
  t.notOk(isErrnoName('ERESTARTSYS'), 'not an errno here: EINTR without a signal makes callers retry forever');
  t.equal(errnoName(11), 'EAGAIN', 'the canonical name of an aliased number');
  t.equal(errnoName(95), 'EOPNOTSUPP');
  t.equal(errnoName(0), undefined);
  t.equal(errnoName(512), undefined);
  t.equal(errnoName(2.5), undefined);
  t.notOk(isErrnoName('constructor'));
});

t.test('every errno form a plugin may throw', async t => {
  t.equal(toMdevError('EPROTO').errno, 'EPROTO');
  t.equal(toMdevError({ errno: 'EPROTO' }).errno, 'EPROTO');
  t.equal(toMdevError({ errno: 75 }).errno, 'EOVERFLOW');
  t.equal(toMdevError({ errno: -75 }).errno, 'EOVERFLOW');
  t.equal(toMdevError({ errno: 524 }).errno, 'ENOTSUPP');
  t.equal(new MdevError(75).errno, 'EOVERFLOW');
  t.equal(new MdevError(75).message, 'EOVERFLOW');
  t.equal(new MdevError(-22, 'bad').errno, 'EINVAL');
  t.equal(new MdevError('EUSERS', 'full').message, 'full');
  const fs = Object.assign(new Error('ENOENT: no such file'), { errno: -2, code: 'ENOENT' }); // a Node system error
  t.equal(toMdevError(fs).errno, 'ENOENT');
  t.equal(toMdevError({ code: 'EACCES' }).errno, 'EACCES');
});

t.test('what is no errno is EIO (or the fallback), with a message that says what it was', async t => {
  const cases: [unknown, string][] = [
    [{ errno: 600 }, 'not an errno: 600'],
    [{ errno: 0, message: 'zero' }, 'not an errno: 0: zero'],
    [{ errno: 'EBOGUS' }, 'not an errno: "EBOGUS"'],
    [{ reason: 'x' }, '{"reason":"x"}'],
    [{}, '{}'],
    [Object.create(null), '{}'],
    [new (class Oops {})(), 'Oops {}'],
    [[1, 2], 'Array [1,2]'],
    [42, '42'],
    [null, 'null'],
    [undefined, 'undefined'],
    ['boom', 'boom'],
    [new Error('plugin bug'), 'plugin bug'],
    [{ message: 'has a message' }, 'has a message'],
    [function named() {}, 'a function named'],
  ];
  for (const [thrown, message] of cases) {
    const e = toMdevError(thrown);
    t.equal(e.errno, 'EIO', message);
    t.equal(e.message, message);
  }
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  t.equal(toMdevError(cyclic).message, 'an object', 'a cycle');
  t.equal(
    toMdevError(
      new (class Loop {
        self = this;
      })(),
    ).message,
    'a Loop object',
  );
  t.equal(toMdevError({ x: 1 }, 'EINVAL').errno, 'EINVAL', 'the fallback for what carries no errno');
  t.equal(toMdevError({ errno: 600 }, 'EINVAL').errno, 'EINVAL');
  const bad = new MdevError('EBOGUS' as ErrnoName, 'from plain JavaScript');
  t.equal(bad.errno, 'EIO');
  t.equal(bad.message, 'not an errno: "EBOGUS": from plain JavaScript');
  t.equal(new MdevError(600).errno, 'EIO');
  t.equal(errorMessage({ a: 1 }), '{"a":1}');
  t.equal(errorMessage('x'.repeat(300)).length, 300, 'a string is the message as is');
  t.equal(errorMessage({ long: 'x'.repeat(300) }).length, 200, 'a described value is cut');
});
