// The real tree, mounted by `bin/mdevfs mount --driver test/fixtures/test-plugin.ts`
// (modern profile), checked with coreutils and raw syscalls from child processes.
import t from 'tap';
import { startDaemon, mdevfsMount, sh, FIXTURES } from '../helpers/daemon.js';
import { sys, writeOnce, readOnce, one } from '../helpers/sys.js';
import { sleep } from '../helpers/util.js';
import { P, PCI, TA, TB, TG } from '../fixtures/test-plugin.js';

const PLUGIN = `${FIXTURES}/test-plugin.ts`;
const U1 = '83b8f4f2-509f-382f-3c1e-e6bfe0fa1001';
const U2 = '83b8f4f2-509f-382f-3c1e-e6bfe0fa1002';
const U3 = '83b8f4f2-509f-382f-3c1e-e6bfe0fa1003';
const U4 = '83b8f4f2-509f-382f-3c1e-e6bfe0fa1004';

type St = { mode: number; size: number; nlink: number; uid: number; gid: number; ino: number };

t.test('modern profile, test plugin', async t => {
  const d = await startDaemon(t, { command: mdevfsMount('--driver', PLUGIN, '--call-timeout', '1000') });
  const p = d.p;
  t.match(d.stdout, /^mdevfs: mounted \S+ \(profile modern, 2 parents\)$/m, 'ready line');

  const lstat = async (rel: string) => one(['lstat', p(rel)]) as Promise<St & { errno?: string }>;
  const modeOf = async (rel: string) => (await lstat(rel)).mode ?? -1;
  const exists = async (rel: string) => (await lstat(rel)).errno === undefined;
  const link = (rel: string) => one(['readlink', p(rel)]);

  t.test('root and static layout', async t => {
    t.same(await one(['listdir', d.dir]), ['bus', 'class', 'devices', 'kernel']);
    t.same(await one(['listdir', p('bus/mdev')]), ['devices', 'drivers', 'drivers_autoprobe', 'drivers_probe', 'uevent']);
    t.same(await one(['listdir', p('bus/mdev/drivers')]), ['intel_vgpu_mdev', 'mtest']);
    t.same(await one(['listdir', p('bus/mdev/drivers/mtest')]), ['bind', 'uevent', 'unbind']);
    t.equal(await modeOf('bus/mdev/drivers_autoprobe'), 0o100644);
    t.equal(await readOnce(p('bus/mdev/drivers_autoprobe')), '1\n');
    t.equal(await modeOf('bus/mdev/drivers_probe'), 0o100200);
    t.equal(await modeOf('bus/mdev/uevent'), 0o100200);
    for (const f of ['bind', 'unbind', 'uevent']) t.equal(await modeOf(`bus/mdev/drivers/mtest/${f}`), 0o100200, f);
    t.same(await one(['listdir', p('class/mdev_bus')]), ['0000:00:02.0', 'mtest']);
    t.equal(await link('class/mdev_bus/mtest'), '../../devices/virtual/mtest/mtest');
    t.equal(await link('class/mdev_bus/0000:00:02.0'), '../../devices/pci0000:00/0000:00:02.0');
    t.same(await one(['listdir', p('kernel/iommu_groups')]), ['1'], "only the PCI parent's own group");
  });

  t.test('parent directories', async t => {
    t.same(await one(['listdir', p(P)]), ['mdev_supported_types', 'power', 'subsystem', 'uevent']);
    t.equal(await link(`${P}/subsystem`), '../../../../class/mtest');
    t.equal(await link('class/mtest/mtest'), '../../devices/virtual/mtest/mtest');
    t.equal(await readOnce(p(`${P}/uevent`)), '');
    t.same(await one(['listdir', p(PCI)]), ['driver', 'iommu_group', 'mdev_supported_types', 'power', 'subsystem', 'uevent', 'vendor']);
    t.equal(await link(`${PCI}/subsystem`), '../../../bus/pci');
    t.equal(await link(`${PCI}/driver`), '../../../bus/pci/drivers/i915');
    t.equal(await link(`${PCI}/iommu_group`), '../../../kernel/iommu_groups/1');
    t.equal(await link('bus/pci/devices/0000:00:02.0'), '../../../devices/pci0000:00/0000:00:02.0');
    t.equal(await link('bus/pci/drivers/i915/0000:00:02.0'), '../../../../devices/pci0000:00/0000:00:02.0');
    t.equal(await link('kernel/iommu_groups/1/devices/0000:00:02.0'), '../../../../devices/pci0000:00/0000:00:02.0');
    t.equal(await readOnce(p(`${PCI}/uevent`)), 'DRIVER=i915\n');
    t.equal(await readOnce(p(`${PCI}/vendor`)), '0x8086\n');
    t.notOk(await exists(`${P}/mtest_dev`), 'dev_attr_groups are legacy-only');
    for (const [f, mode, text] of [
      ['control', 0o100644, 'auto\n'],
      ['runtime_status', 0o100444, 'unsupported\n'],
      ['runtime_active_time', 0o100444, '0\n'],
      ['runtime_suspended_time', 0o100444, '0\n'],
    ] as const) {
      t.equal(await modeOf(`${P}/power/${f}`), mode, f);
      t.equal(await readOnce(p(`${P}/power/${f}`)), text, f);
    }
    t.equal(await modeOf(`${P}/power/autosuspend_delay_ms`), 0o100644);
    t.same(await readOnce(p(`${P}/power/autosuspend_delay_ms`)), { errno: 'EIO' });
    t.equal(await writeOnce(p(`${P}/power/autosuspend_delay_ms`), '100\n'), 'EIO');
  });

  t.test('type directories', async t => {
    t.same(await one(['listdir', p(TA)]), ['available_instances', 'create', 'description', 'device_api', 'devices', 'extra', 'name']);
    t.same(await one(['listdir', p(TB)]), ['available_instances', 'create', 'device_api', 'devices', 'name'], 'no description without one');
    t.equal(await modeOf(`${TA}/create`), 0o100200);
    for (const f of ['name', 'available_instances', 'device_api', 'description']) {
      const st = await lstat(`${TA}/${f}`);
      t.equal(st.mode, 0o100444, f);
      t.equal(st.size, 4096, `${f} st_size`);
      t.equal(st.uid, 0);
      t.equal(st.gid, 0);
    }
    const dir = await lstat(`${TA}/devices`);
    t.equal(dir.mode, 0o040755);
    t.equal(await readOnce(p(`${TA}/name`)), 'Type A\n');
    t.equal(await readOnce(p(`${TB}/name`)), 'b\n', 'falls back to the id');
    t.equal(await readOnce(p(`${TA}/device_api`)), 'vfio-pci\n');
    t.equal(await readOnce(p(`${TA}/description`)), 'first line\nsecond line\n', 'exactly as given');
    t.equal(await readOnce(p(`${TA}/available_instances`)), '3\n');
    t.equal(await readOnce(p(`${TB}/available_instances`)), '3\n', 'one counter per parent');
    t.equal(await readOnce(p(`${TG}/available_instances`)), '2\n');
    t.equal(await readOnce(p(`${TA}/extra`)), 'extra\n');
    const ls = await sh(`ls -l ${p(TA)}`);
    t.match(ls.stdout, /--w------- 1 root root 4096 .* create\n/);
    t.match(ls.stdout, /-r--r--r-- 1 root root 4096 .* name\n/);
  });

  t.test('permissions: EACCES at open even for root, access() succeeds', async t => {
    t.same(await readOnce(p(`${TA}/create`)), { errno: 'EACCES' });
    t.equal(await writeOnce(p(`${TA}/name`), 'x\n'), 'EACCES');
    t.equal(await writeOnce(p(`${TA}/available_instances`), '1\n'), 'EACCES');
    t.equal(await writeOnce(p(`${TA}/description`), '1\n'), 'EACCES');
    t.equal(await one(['access', p(`${TA}/create`), 'R_OK']), true);
    t.equal(await one(['access', p(`${TA}/name`), 'W_OK']), true);
    const cat = await sh(`cat ${p(`${TA}/create`)}`);
    t.match(cat.stderr, /Permission denied/);
    const echo = await sh(`echo 1 > ${p(`${TA}/available_instances`)}`);
    t.match(echo.stderr, /Permission denied/);
  });

  t.test('namespace operations: EPERM, new files EACCES', async t => {
    t.same(await one(['mkdir', p(`${TA}/x`)]), { errno: 'EPERM' });
    t.same(await one(['rmdir', p(`${TA}/devices`)]), { errno: 'EPERM' });
    t.same(await one(['rename', p(`${TA}/name`), p(`${TA}/n2`)]), { errno: 'EPERM' });
    t.same(await one(['unlink', p(`${TA}/name`)]), { errno: 'EPERM' });
    t.same(await one(['unlink', p('class/mdev_bus/mtest')]), { errno: 'EPERM' });
    t.same(await one(['symlink', 'x', p(`${TA}/l`)]), { errno: 'EPERM' });
    t.same(await one(['open', p(`${TA}/new`), 'O_WRONLY|O_CREAT']), { errno: 'EACCES' });
    const touch = await sh(`touch ${p(`${TA}/new`)}`);
    t.match(touch.stderr, /Permission denied/);
    const mkdir = await sh(`mkdir ${p(`${TA}/x`)}`);
    t.match(mkdir.stderr, /Operation not permitted/);
  });

  t.test('create: 37 bytes with echo, 36 with printf; everything exists when the write returns', async t => {
    const before = await readOnce(p(`${TA}/available_instances`));
    t.equal(before, '3\n');
    // One python process: write create, then look at once (no sleeps, no retries).
    const D = `${P}/${U1}`;
    const checks = [
      `${D}`,
      `${D}/remove`,
      `${D}/mdev_type`,
      `${D}/driver`,
      `${D}/subsystem`,
      `${D}/iommu_group`,
      `${D}/uevent`,
      `${D}/power`,
      `${D}/vendor/sample_mdev_dev`,
      `${TA}/devices/${U1}`,
      `bus/mdev/devices/${U1}`,
      `bus/mdev/drivers/mtest/${U1}`,
      'kernel/iommu_groups/0',
      `kernel/iommu_groups/0/devices/${U1}`,
    ];
    const r = await sys([
      ['open', p(`${TA}/create`), 'O_WRONLY|O_CREAT|O_TRUNC'],
      ['write', 0, `${U1}\n`],
      ['close', 0],
      ...checks.map(c => ['lstat', p(c)] as ['lstat', string]),
      ['open', p(`${TA}/available_instances`), 'O_RDONLY'],
      ['read', 1, 100],
    ]);
    t.equal(r[1]!.ok, 37, 'echo-style write returns 37');
    checks.forEach((c, i) => t.equal(r[3 + i]!.errno, undefined, `${c} exists when the write returns`));
    t.equal(r[3 + checks.length + 1]!.ok, '2\n', 'available_instances already lower');
    t.equal(await readOnce(p(`${TB}/available_instances`)), '2\n');

    const pf = await sh(`printf %s ${U2} > ${p(`${TB}/create`)} && echo ok`);
    t.equal(pf.stdout, 'ok\n', pf.stderr);
    t.equal(await writeOnce(p(`${TB}/create`), U3.toUpperCase(), 'O_WRONLY'), 36, 'no O_TRUNC, uppercase');
    t.ok(await exists(`${P}/${U3}`), 'named in lowercase');
    t.equal(await readOnce(p(`${TA}/available_instances`)), '0\n');
  });

  t.test('device directory: modes, link targets, contents', async t => {
    const D = `${P}/${U1}`;
    t.same(await one(['listdir', p(D)]), [
      'driver',
      'iommu_group',
      'mdev_type',
      'power',
      'remove',
      'subsystem',
      'uevent',
      'vendor',
      'vfio-dev',
    ]);
    t.equal(await modeOf(`${D}/remove`), 0o100200);
    t.equal(await modeOf(`${D}/uevent`), 0o100644);
    t.equal(await modeOf(D), 0o040755);
    t.equal(await modeOf(`${D}/driver`), 0o120777);
    t.equal(await link(`${D}/mdev_type`), '../mdev_supported_types/mtest-a');
    t.equal(await link(`${D}/driver`), '../../../../../bus/mdev/drivers/mtest');
    t.equal(await link(`${D}/subsystem`), '../../../../../bus/mdev');
    t.equal(await link(`${D}/iommu_group`), '../../../../../kernel/iommu_groups/0');
    t.equal(await link(`${TA}/devices/${U1}`), `../../../${U1}`);
    t.equal(await link(`bus/mdev/devices/${U1}`), `../../../${P}/${U1}`);
    t.equal(await link(`bus/mdev/drivers/mtest/${U1}`), `../../../../${P}/${U1}`);
    t.equal(await link(`kernel/iommu_groups/0/devices/${U1}`), `../../../../${P}/${U1}`);
    const rl = await sh(`readlink -f ${p(`bus/mdev/devices/${U1}`)}; basename $(readlink -f ${p(`bus/mdev/devices/${U1}`)}/mdev_type)`);
    t.equal(rl.stdout, `${p(D)}\nmtest-a\n`, 'links canonicalise inside the mount');
    t.equal(await readOnce(p(`${D}/uevent`)), 'DRIVER=mtest\n');
    t.equal(await writeOnce(p(`${D}/uevent`), 'change\n'), 7, 'uevent writes accepted');
    t.equal(await writeOnce(p(`${D}/uevent`), 'frobnicate\n'), 'EINVAL');
    t.equal(await readOnce(p(`${D}/mdev_type/name`)), 'Type A\n', 'reads through links');
    t.equal(await readOnce(p(`${D}/vendor/sample_mdev_dev`)), `This is MDEV ${U1}\n`);
    t.same(await one(['listdir', p('kernel/iommu_groups/0')]), ['devices', 'name', 'reserved_regions', 'type']);
    t.equal(await readOnce(p('kernel/iommu_groups/0/name')), 'vfio-noiommu\n');
    t.equal(await readOnce(p('kernel/iommu_groups/0/type')), 'unknown\n');
    t.equal(await readOnce(p('kernel/iommu_groups/0/reserved_regions')), '');
    t.equal(await modeOf('kernel/iommu_groups/0/type'), 0o100644);
    t.equal(await readOnce(p(`${D}/power/runtime_status`)), 'unsupported\n');
    t.equal(await writeOnce(p(`${D}/power/control`), 'on\n'), 3);
    t.equal(await readOnce(p(`${D}/power/control`)), 'on\n');
    t.equal(await writeOnce(p(`${D}/power/control`), 'sometimes\n'), 'EINVAL');
    t.same(await readOnce(p(`${D}/remove`)), { errno: 'EACCES' }, 'remove is write-only');
  });

  t.test('create errors reach the writer', async t => {
    t.equal(await writeOnce(p(`${TA}/create`), U1), 'EEXIST', 'duplicate');
    t.equal(await writeOnce(p(`${TG}/create`), U1), 'EEXIST', 'duplicate on another parent');
    t.equal(await writeOnce(p(`${TA}/create`), U4), 'EUSERS', 'core counter exhausted');
    t.equal(await writeOnce(p(`${TA}/create`), U4.slice(0, 35)), 'EINVAL', '35 bytes');
    t.equal(await writeOnce(p(`${TA}/create`), `${U4}\n\n`), 'EINVAL', '38 bytes');
    t.equal(await writeOnce(p(`${TA}/create`), `{${U4.slice(0, 35)}`), 'EINVAL', 'not a uuid');
    const sh1 = await sh(`echo ${U1} > ${p(`${TA}/create`)}`);
    t.match(sh1.stderr, /write error: File exists/);
    const sh2 = await sh(`echo ${U4} > ${p(`${TA}/create`)}`);
    t.match(sh2.stderr, /write error: Too many users/);
    const sh3 = await sh(`echo nonsense > ${p(`${TA}/create`)}`);
    t.match(sh3.stderr, /write error: Invalid argument/);
    // The PCI parent's plugin refuses past its pool.
    const ec = await sh(`echo ${U4} > ${p(`${TG}/create`)}`);
    t.equal(ec.code, 0, `bash echo (37 bytes) creates: ${ec.stderr}`);
    t.equal(await writeOnce(p(`${TG}/create`), '83b8f4f2-509f-382f-3c1e-e6bfe0fa1005'), 36);
    t.equal(await readOnce(p(`${TG}/available_instances`)), '0\n');
    t.equal(await writeOnce(p(`${TG}/create`), '83b8f4f2-509f-382f-3c1e-e6bfe0fa1006'), 'ENOSPC');
    const sh4 = await sh(`echo 83b8f4f2-509f-382f-3c1e-e6bfe0fa1006 > ${p(`${TG}/create`)}`);
    t.match(sh4.stderr, /write error: No space left on device/);
    t.notOk(await exists(`${PCI}/83b8f4f2-509f-382f-3c1e-e6bfe0fa1006`), 'nothing left of a failed create');
    t.equal(await writeOnce(p(`${TA}/create`), ''), 0, 'an empty write stores nothing');
    // Groups 0, 2, 3 hold U1..U3; 1 is the PCI parent's own: the lowest free is 4.
    t.equal(await link(`${PCI}/${U4}/iommu_group`), '../../../../kernel/iommu_groups/4', 'lowest free group');
  });

  t.test('plugin attributes: errors, stores, and a hung show does not wedge the mount', async t => {
    const V = `${P}/${U1}/vendor`;
    t.same(await readOnce(p(`${V}/boom`)), { errno: 'EIO' }, 'a plain throw is EIO');
    t.same(await readOnce(p(`${V}/nospace`)), { errno: 'ENOSPC' }, 'a thrown errno passes through');
    t.equal(await readOnce(p(`${V}/knob`)), 'unset\n');
    t.equal(await writeOnce(p(`${V}/knob`), 'hello\n'), 6);
    t.equal(await readOnce(p(`${V}/knob`)), 'hello\n');
    t.equal(await writeOnce(p(`${V}/knob`), 'bad\n'), 'EINVAL');
    t.equal(await modeOf(`${V}/knob`), 0o100644);
    t.equal(await modeOf(`${V}/sample_mdev_dev`), 0o100444);
    const start = Date.now();
    const [hung, other] = await Promise.all([
      readOnce(p(`${V}/hang`)),
      (async () => {
        await sleep(100);
        const s = Date.now();
        const v = await readOnce(p(`${TA}/name`));
        return { v, ms: Date.now() - s };
      })(),
    ]);
    t.same(hung, { errno: 'ETIMEDOUT' });
    t.ok(Date.now() - start < 4000, 'bounded by --call-timeout');
    t.equal(other.v, 'Type A\n');
    t.ok(other.ms < 900, `the mount kept answering (${other.ms} ms)`);
  });

  t.test('bus/mdev files', async t => {
    t.equal(await writeOnce(p('bus/mdev/drivers_probe'), `${U1}\n`), 37);
    t.equal(await writeOnce(p('bus/mdev/drivers_probe'), 'nope\n'), 'ENODEV');
    t.equal(
      await writeOnce(p('bus/mdev/drivers/mtest/bind'), `${U1}\n`),
      'ENODEV',
      'mdev_match() refuses every driver (drivers/vfio/mdev/mdev_driver.c)',
    );
    t.equal(await writeOnce(p('bus/mdev/drivers/mtest/bind'), 'nope\n'), 'ENODEV');
    t.equal(await writeOnce(p('bus/mdev/drivers/mtest/unbind'), 'nope\n'), 'ENODEV');
    t.equal(await writeOnce(p('bus/mdev/uevent'), 'add\n'), 4);
  });

  t.test('remove: kstrtoul rules', async t => {
    const R = p(`${P}/${U2}/remove`);
    for (const bad of [' 1', '1 ', 'yes', '-1', 'y', '1\n\n', '\n', '0x', '99999999999999999999999']) {
      t.equal(await writeOnce(R, bad), 'EINVAL', JSON.stringify(bad));
    }
    t.equal(await writeOnce(R, '0'), 1, '0: accepted, nothing happens');
    t.equal(await writeOnce(R, '0\n'), 2);
    t.ok(await exists(`${P}/${U2}`));
    t.equal(await writeOnce(R, '0x1'), 3, '0x1 removes');
    t.notOk(await exists(`${P}/${U2}`));
    // octal and +1 on fresh devices
    t.equal(await writeOnce(p(`${TB}/create`), U2), 36);
    t.equal(await writeOnce(p(`${P}/${U2}/remove`), '010'), 3, '010 removes');
    t.notOk(await exists(`${P}/${U2}`));
    t.equal(await writeOnce(p(`${TB}/create`), U2), 36);
    t.equal(await writeOnce(p(`${P}/${U2}/remove`), '+1\n'), 3, '+1 removes');
    t.notOk(await exists(`${P}/${U2}`));
  });

  t.test('remove: everything gone when the write returns; ENODEV on a stale descriptor', async t => {
    const D = `${P}/${U3}`;
    const gone = [D, `${TB}/devices/${U3}`, `bus/mdev/devices/${U3}`, `bus/mdev/drivers/mtest/${U3}`];
    const grp = (await link(`${D}/iommu_group`)) as string;
    const gid = grp.split('/').pop()!;
    gone.push(`kernel/iommu_groups/${gid}`);
    const before = await readOnce(p(`${TB}/available_instances`));
    const r = await sys([
      ['open', p(`${D}/vendor/sample_mdev_dev`), 'O_RDONLY'],
      ['open', p(`${D}/uevent`), 'O_RDWR'],
      ['open', p(`${D}/remove`), 'O_WRONLY'],
      ['write', 2, '1\n'],
      ...gone.map(g => ['lstat', p(g)] as ['lstat', string]),
      ['read', 0, 100],
      ['read', 1, 100],
      ['write', 1, 'change'],
      ['write', 2, '1'],
      ['open', p(`${TB}/available_instances`), 'O_RDONLY'],
      ['read', 3, 100],
    ]);
    t.equal(r[3]!.ok, 2, 'remove write returns');
    gone.forEach((g, i) => t.equal(r[4 + i]!.errno, 'ENOENT', `${g} gone when the write returns`));
    const k = 4 + gone.length;
    t.equal(r[k]!.errno, 'ENODEV', 'read on a stale descriptor');
    t.equal(r[k + 1]!.errno, 'ENODEV');
    t.equal(r[k + 2]!.errno, 'ENODEV', 'write on a stale descriptor');
    t.equal(r[k + 3]!.errno, 'ENODEV', 'remove on a stale descriptor');
    t.equal(r[k + 5]!.ok, `${Number(before) + 1}\n`, 'available_instances back at once');
    const rm = await sh(`echo 1 > ${p(`${D}/remove`)}`);
    t.match(rm.stderr, /No such file or directory/);
  });

  t.test('SIGTERM unmounts cleanly', async t => {
    const e = await d.stop('SIGTERM');
    t.equal(e.code, 0);
    const m = await sh(`grep -c " ${d.dir} " /proc/mounts`);
    t.equal(m.stdout.trim(), '0');
  });
});
