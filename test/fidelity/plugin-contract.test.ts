// The plugin contract through a real mount (test/fixtures/contract-plugin.ts,
// README "Write a vendor driver"): a store gets the exact bytes of a write,
// any errno a plugin throws reaches the writer (or the kernel's own mapped as
// user space gets it), and a show that returns neither text nor bytes fails
// the read with EIO, its cause logged under --verbose.
import os from 'node:os';
import t, { type Test } from 'tap';
import { FIXTURES, mdevfsMount, run, sh, startDaemon } from '../helpers/daemon.js';
import { readOnce, sys, writeOnce, type Step } from '../helpers/sys.js';
import { PYTHON } from '../helpers/util.js';
import { C } from '../fixtures/contract-plugin.js';

const PLUGIN = `${FIXTURES}/contract-plugin.ts`;

t.test('plugin contract', async t => {
  const d = await startDaemon(t, { command: mdevfsMount('--driver', PLUGIN, '-v', '--call-timeout', '2000') });
  const f = (name: string) => d.p(C, name);

  t.test('a store gets the raw bytes of the write, and their UTF-8 reading', async t => {
    // The fixture shows: raw bytes as hex, the string form re-encoded as hex, Buffer.isBuffer(raw).
    t.equal(await writeOnce(f('raw'), Buffer.from([0xff, 0xfe, 0x0a])), 3);
    t.equal(await readOnce(f('raw')), 'fffe0a efbfbdefbfbd0a true\n', 'not UTF-8: raw exact, the string has U+FFFD');
    t.equal(await writeOnce(f('raw'), Buffer.from([0x00, 0xc3, 0xa9, 0x80])), 4);
    t.equal(await readOnce(f('raw')), '00c3a980 00c3a9efbfbd true\n', 'NUL and a valid UTF-8 sequence kept');
    const r = await sh(`printf 'a\\377' > ${f('raw')} && cat ${f('raw')}`);
    t.equal(r.stdout, '61ff 61efbfbd true\n', "through the shell's printf");
  });

  // Python's name for each errno number (it has no EHWPOISON: the helper then reports the number).
  const py = await run(PYTHON, ['-c', 'import errno, json; print(json.dumps(errno.errorcode))']);
  const pyName = JSON.parse(py.stdout) as Record<string, string>;
  const seen = (n: number) => pyName[n] ?? String(n);

  /** One open of `throw`, one write per text: the errno name each write failed with. */
  async function thrown(t: Test, texts: string[]): Promise<(string | undefined)[]> {
    const steps: Step[] = [['open', f('throw'), 'O_WRONLY'], ...texts.map((x): Step => ['write', 0, x])];
    const r = await sys(steps);
    t.equal(r[0]!.errno, undefined, 'open');
    return r.slice(1).map(x => x.errno);
  }

  t.test("every name of Node's os.constants.errno, thrown in each form", async t => {
    // EINTR is left out: Python retries a write that fails with it (PEP 475), as it should.
    const names = Object.entries(os.constants.errno).filter(([n]) => n !== 'EINTR');
    for (const form of ['mdev', 'object', 'string']) {
      const got = await thrown(
        t,
        names.map(([n]) => `${form} ${n}`),
      );
      const want = names.map(([, num]) => seen(num));
      t.same(got, want, `${form}: the writer gets that errno`);
    }
  });

  t.test('numbers, and names Node lacks', async t => {
    const cases: [string, number][] = [
      ['object 75', 75], // EOVERFLOW, once EIO with "[object Object]"
      ['object -71', 71], // kernel-style negative
      ['mdev 75', 75], // new MdevError(75)
      ['mdev EUSERS', 87],
      ['object ENOKEY', 126],
      ['string EKEYREJECTED', 129],
      ['mdev ERFKILL', 132],
      ['mdev EHWPOISON', 133],
    ];
    t.same(
      await thrown(
        t,
        cases.map(c => c[0]),
      ),
      cases.map(c => seen(c[1])),
    );
  });

  t.test("the kernel's own codes reach the writer as user space gets them", async t => {
    t.same(
      await thrown(t, ['mdev ENOTSUPP', 'object 524', 'mdev EPROBE_DEFER', 'mdev ENOIOCTLCMD']),
      ['EOPNOTSUPP', 'EOPNOTSUPP', 'EAGAIN', 'ENOTTY'].map(n => seen(os.constants.errno[n as keyof typeof os.constants.errno])),
    );
  });

  t.test('what is no errno fails with EIO, and the log says what was thrown', async t => {
    t.same(await thrown(t, ['mdev EBOGUS', 'object 600', 'object 0', 'plain x', 'mdev ERESTARTSYS']), ['EIO', 'EIO', 'EIO', 'EIO', 'EIO']);
    t.match(d.stderr, /throw: store: not an errno: "EBOGUS" \(EIO\)/);
    t.match(d.stderr, /throw: store: not an errno: 600 \(EIO\)/);
    t.match(d.stderr, /throw: store: \{"reason":"x"\} \(EIO\)/);
    t.notMatch(d.stderr, /\[object Object\]/);
  });

  t.test('a show that returns neither text nor bytes fails the read with EIO', async t => {
    for (const [name, what] of [
      ['show_undefined', 'undefined'],
      ['show_null', 'null'],
      ['show_number', 'number'],
      ['show_object', 'object'],
    ]) {
      t.same(await readOnce(f(name!)), { errno: 'EIO' }, name);
      const r = await sh(`cat ${f(name!)}`);
      t.equal(r.stdout, '', `${name}: cat prints nothing`);
      t.match(r.stderr, /Input\/output error/);
      t.match(d.stderr, `${name}: show returned ${what}, not text or bytes (EIO)`, `${name}: the cause is logged`);
    }
    t.equal(await readOnce(f('show_text')), 'text\n', 'text is shown');
  });
});
