// What a write to a `uevent` file asks for, parsed as lib/kobject_uevent.c
// kobject_synth_uevent (today) and 4.10's uevent_store do.
import t from 'tap';
import { parseSynthUevent, parseUevent410 } from '../../src/sysfs/uevent-files.js';

const U = '2cd5a1a7-0000-4000-8000-000000000001';
const parse = (s: string) => {
  try {
    return parseSynthUevent(Buffer.from(s, 'latin1'));
  } catch (e) {
    return (e as { errno?: string }).errno;
  }
};

t.test('today: an action word, then optionally a UUID and KEY=VALUE pairs', async t => {
  t.same(parse('change'), { action: 'change', env: [['SYNTH_UUID', '0']] });
  t.same(parse('change\n'), { action: 'change', env: [['SYNTH_UUID', '0']] }, 'one trailing newline');
  t.same(parse('add\0'), { action: 'add', env: [['SYNTH_UUID', '0']] }, 'or one trailing NUL');
  for (const a of ['add', 'remove', 'change', 'move', 'online', 'offline', 'bind', 'unbind'])
    t.same(parse(a), { action: a, env: [['SYNTH_UUID', '0']] });
  t.same(parse(`add ${U}`), { action: 'add', env: [['SYNTH_UUID', U]] });
  t.same(parse(`add ${U.toUpperCase()}\n`), { action: 'add', env: [['SYNTH_UUID', U.toUpperCase()]] }, 'the UUID as written');
  t.same(parse(`change ${U} A=1 b2=xY\n`), {
    action: 'change',
    env: [
      ['SYNTH_UUID', U],
      ['SYNTH_ARG_A', '1'],
      ['SYNTH_ARG_b2', 'xY'],
    ],
  });
});

t.test('today: everything else is EINVAL', async t => {
  for (const bad of [
    '',
    '\n',
    'chang',
    'changes',
    'Change',
    'change\n\n',
    'add ',
    'add \n',
    'add x',
    `add ${U.slice(0, 35)}`,
    `add ${U}x`,
    `add ${U} `,
    `add ${U}  A=1`,
    `add ${U} A`,
    `add ${U} A=`,
    `add ${U} =1`,
    `add ${U} A-B=1`,
    `add ${U} A=1-2`,
    `add ${U} A=1 `,
    `add  ${U}`,
  ]) {
    t.equal(parse(bad), 'EINVAL', JSON.stringify(bad));
  }
});

t.test('4.10: the bare action word, no bind/unbind; anything else is ignored', async t => {
  const p = (s: string) => parseUevent410(Buffer.from(s));
  t.same(p('change\n'), { action: 'change', env: [] });
  t.same(p('offline'), { action: 'offline', env: [] });
  for (const ignored of ['bind', 'unbind', `add ${U}`, 'bogus', '', '\n', 'add ']) t.equal(p(ignored), undefined, JSON.stringify(ignored));
});
