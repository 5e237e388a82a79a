// `mdevfs mount` with no --driver: the sample drivers (examples/samples.ts),
// driven by shell tools and by the real mdevctl (Debian's 1.2.0 has no root
// override, so it runs in a private mount namespace with the mount over /sys).
import t from 'tap';
import { existsSync, promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startDaemon, sh, run, REPO } from '../helpers/daemon.js';
import { readOnce } from '../helpers/sys.js';

const MTTY = 'devices/virtual/mtty/mtty';
const U = '83b8f4f2-509f-382f-3c1e-e6bfe0fa1001';

if (!existsSync(path.join(REPO, 'examples/samples.ts'))) {
  t.pass('examples/samples.ts not there yet: skipped');
} else {
  t.test('the sample drivers', async t => {
    const d = await startDaemon(t);
    t.match(d.stdout, /\(profile modern, 3 parents\)/);
    t.same((await fsp.readdir(d.p('class/mdev_bus'))).sort(), ['mbochs', 'mdpy', 'mtty']);
    t.equal(await readOnce(d.p(`${MTTY}/mdev_supported_types/mtty-2/available_instances`)), '12\n');
    const e = await sh(
      `echo ${U} > ${d.p(`${MTTY}/mdev_supported_types/mtty-2/create`)} && cat ${d.p(`${MTTY}/${U}/vendor/sample_mdev_dev`)}`,
    );
    t.equal(e.stdout, `This is MDEV ${U}\n`, e.stderr);
    t.equal(await readOnce(d.p(`${MTTY}/mdev_supported_types/mtty-2/available_instances`)), '11\n');
    t.equal(await readOnce(d.p(`${MTTY}/mdev_supported_types/mtty-1/available_instances`)), '22\n', 'one pool of ports');
    const rm = await sh(`echo 1 > ${d.p(`bus/mdev/devices/${U}/remove`)} && ls ${d.p('bus/mdev/devices')} | wc -l`);
    t.equal(rm.stdout.trim(), '0', rm.stderr);

    const hasTools = (await run('bash', ['-c', 'command -v mdevctl && command -v unshare'])).code === 0;
    t.test('mdevctl types/start/list/stop', { skip: hasTools ? false : 'mdevctl or unshare missing' }, async t => {
      const cfg = await fsp.mkdtemp(path.join(os.tmpdir(), 'mdevfs-mdevctl-'));
      t.teardown(() => fsp.rm(cfg, { recursive: true, force: true }));
      await fsp.mkdir(path.join(cfg, 'scripts.d/callouts'), { recursive: true });
      await fsp.mkdir(path.join(cfg, 'scripts.d/notifiers'), { recursive: true });
      const mdevctl = (cmd: string) =>
        run(
          'unshare',
          [
            '--mount',
            '--propagation',
            'private',
            '--',
            'sh',
            '-c',
            `mount --bind ${d.dir} /sys && mount --bind ${cfg} /etc/mdevctl.d && ${cmd}`,
          ],
          { timeoutMs: 60_000 },
        );
      const types = await mdevctl('mdevctl types --dumpjson');
      t.equal(types.code, 0, types.stderr);
      const parsed = JSON.parse(types.stdout) as Array<
        Record<string, Array<Record<string, { available_instances: number; device_api: string; name?: string }>>>
      >;
      const mtty = parsed.find(p => p.mtty)!.mtty!;
      t.same(
        mtty.map(x => Object.keys(x)[0]),
        ['mtty-1', 'mtty-2'],
      );
      t.equal(mtty[1]!['mtty-2']!.available_instances, 12);
      t.equal(mtty[1]!['mtty-2']!.name, 'Dual port serial');
      const start = await mdevctl(`mdevctl start -u ${U} -p mtty -t mtty-2`);
      t.equal(start.code, 0, start.stderr);
      const list = await mdevctl('mdevctl list');
      t.equal(list.stdout.trim(), `${U} mtty mtty-2 manual`);
      t.equal(await readOnce(d.p(`${MTTY}/mdev_supported_types/mtty-2/available_instances`)), '11\n');
      const dup = await mdevctl(`mdevctl start -u ${U} -p mtty -t mtty-2`);
      t.equal(dup.code, 1);
      t.match(dup.stderr, /already exists/);
      const stop = await mdevctl(`mdevctl stop -u ${U}`);
      t.equal(stop.code, 0, stop.stderr);
      t.equal((await mdevctl('mdevctl list')).stdout.trim(), '');
    });
  });
}
