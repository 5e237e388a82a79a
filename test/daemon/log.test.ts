// The daemon's log sink: levels, the time-stamped form of mdevfs mount and
// the plain form of mdevfs run, written to a file descriptor.
import t, { type Test } from 'tap';
import { closeSync, openSync, promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createLogger } from '../../src/daemon/log.js';

async function logged(t: Test, opts: Parameters<typeof createLogger>[0], write: (l: ReturnType<typeof createLogger>) => void) {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'mdevfs-log-'));
  t.teardown(() => fsp.rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'log');
  const fd = openSync(file, 'a');
  write(createLogger({ ...opts, fd }));
  closeSync(fd);
  return (await fsp.readFile(file, 'utf8')).split('\n').slice(0, -1);
}

const all = (l: ReturnType<typeof createLogger>) => {
  l.error('mdevfs: e');
  l.warn('mdevfs: w');
  l.info('mdevfs: i');
  l.debug('d');
};

t.test('levels: each drops what is less severe', async t => {
  t.same(await logged(t, { level: 'error' }, all), ['mdevfs: e']);
  t.same(await logged(t, { level: 'warn' }, all), ['mdevfs: e', 'mdevfs: w']);
  t.same(await logged(t, {}, all), ['mdevfs: e', 'mdevfs: w', 'mdevfs: i'], 'info by default');
  t.same(await logged(t, { level: 'debug' }, all), ['mdevfs: e', 'mdevfs: w', 'mdevfs: i', 'd']);
  const l = createLogger({ level: 'warn' });
  t.same([l.enabled('error'), l.enabled('warn'), l.enabled('info'), l.enabled('debug')], [true, true, false, false]);
});

t.test('timestamps: ISO time, the level, the message without its "mdevfs: "', async t => {
  const lines = await logged(t, { level: 'debug', timestamps: true }, all);
  t.equal(lines.length, 4);
  const re = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) (\w+) +(.*)$/;
  t.same(
    lines.map(l => re.exec(l)?.slice(2)),
    [
      ['error', 'e'],
      ['warn', 'w'],
      ['info', 'i'],
      ['debug', 'd'],
    ],
  );
  t.ok(
    lines.every(l => !Number.isNaN(Date.parse(re.exec(l)![1]!))),
    'a parseable time',
  );
});
