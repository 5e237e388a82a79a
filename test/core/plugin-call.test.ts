import t from 'tap';
import { callPlugin, showAttribute, showDescription, storeAttribute } from '../../src/core/plugin-call.js';
import { MdevError } from '../../src/core/errno.js';
import type { Attribute, MdevType } from '../../src/core/api.js';
import { deferred, errnoOf, tick } from './helpers.js';

const opts = { what: 'x: op', timeoutMs: 20 };

t.test('values, throws and rejections', async t => {
  t.equal(await callPlugin(() => 5, opts), 5);
  t.equal(await callPlugin(async () => 6, opts), 6);
  t.equal(
    await errnoOf(
      callPlugin(() => {
        throw new MdevError('ENOSPC');
      }, opts),
    ),
    'ENOSPC',
  );
  t.equal(
    await errnoOf(
      callPlugin(() => {
        throw { errno: 'EBUSY' };
      }, opts),
    ),
    'EBUSY',
  );
  t.equal(
    await errnoOf(
      callPlugin(() => {
        throw 'ENODEV';
      }, opts),
    ),
    'ENODEV',
  );
  t.equal(
    await errnoOf(
      callPlugin(async () => {
        throw new Error('boom');
      }, opts),
    ),
    'EIO',
  );
  t.equal(
    await errnoOf(
      callPlugin(
        () => {
          throw new Error('boom');
        },
        { ...opts, fallback: 'EINVAL' },
      ),
    ),
    'EINVAL',
  );
  const e = await callPlugin(() => {
    throw new Error('boom');
  }, opts).catch((x: Error) => x);
  t.equal(e.message, 'x: op: boom', 'names the callback');
});

t.test('never settling → ETIMEDOUT; a late success reaches onLate, a late failure is swallowed', async t => {
  const late = deferred<number>();
  let lateValue: number | undefined;
  t.equal(
    await errnoOf(
      callPlugin(() => late.promise, {
        ...opts,
        onLate: v => {
          lateValue = v;
        },
      }),
    ),
    'ETIMEDOUT',
  );
  late.resolve(9);
  await tick();
  t.equal(lateValue, 9);
  const lateFail = deferred<number>();
  t.equal(await errnoOf(callPlugin(() => lateFail.promise, opts)), 'ETIMEDOUT');
  lateFail.reject(new Error('late'));
  await tick();
  t.pass('no unhandled rejection');
  const thenable = { then: (res: (v: number) => void) => res(3) };
  t.equal(await callPlugin(() => thenable as unknown as Promise<number>, opts), 3, 'thenables work');
});

t.test('attribute helpers', async t => {
  const attr: Attribute<{ n: number }> = {
    name: 'a',
    show: c => `${c.n}\n`,
    store: (c, v) => {
      c.n = Number(v);
    },
  };
  const ctx = { n: 1 };
  t.equal(await showAttribute(attr, ctx), '1\n');
  await storeAttribute(attr, ctx, '7');
  t.equal(ctx.n, 7);
  t.equal(await errnoOf(showAttribute({ name: 'wo', store() {} }, ctx)), 'EIO');
  t.equal(await errnoOf(storeAttribute({ name: 'ro', show: () => '' }, ctx, 'x')), 'EIO');
  t.equal(await errnoOf(showAttribute({ name: 'n', show: () => 5 as unknown as string }, ctx)), 'EIO');
  t.equal(await errnoOf(showAttribute({ name: 'h', show: () => new Promise<string>(() => {}) }, ctx, 10)), 'ETIMEDOUT');
  t.equal(
    await errnoOf(
      storeAttribute(
        {
          name: 's',
          store: () => {
            throw new MdevError('EINVAL');
          },
        },
        ctx,
        'x',
      ),
    ),
    'EINVAL',
  );
  const type = { id: 'mtty-1', spec: { id: '1', description: (ty: MdevType) => `d ${ty.id}` } } as unknown as MdevType;
  t.equal(await showDescription(type), 'd mtty-1');
  t.equal(await showDescription({ id: 't', spec: { id: '1', description: 'fixed' } } as unknown as MdevType), 'fixed');
  t.equal(await showDescription({ id: 't', spec: { id: '1' } } as unknown as MdevType), undefined);
});

t.test('a store gets the written bytes raw, and decoded as UTF-8', async t => {
  const got: { value: string; raw: Buffer }[] = [];
  const attr: Attribute<null> = { name: 'r', store: (_c, value, raw) => void got.push({ value, raw }) };
  await storeAttribute(attr, null, Buffer.from([0xff, 0xfe, 0x0a]));
  await storeAttribute(attr, null, new Uint8Array([0x61, 0x80]).subarray(1)); // a view: only its own bytes
  await storeAttribute(attr, null, 'é\n'); // text is taken as UTF-8
  t.same(
    got.map(g => [Buffer.isBuffer(g.raw), g.raw.toString('hex'), g.value]),
    [
      [true, 'fffe0a', '\ufffd\ufffd\n'],
      [true, '80', '\ufffd'],
      [true, 'c3a90a', 'é\n'],
    ],
  );
});
