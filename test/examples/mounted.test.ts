// The example drivers through a real mount: `bin/mdevfs mount` with every
// example loaded, checked with raw syscalls from a child process.
import t from 'tap';
import { startDaemon, mdevfsMount, REPO } from '../helpers/daemon.js';
import { readOnce, writeOnce, one } from '../helpers/sys.js';

const drivers = ['samples', 'nvidia-vgpu', 'intel-gvtg', 'vfio-ap', 'vfio-ccw'].flatMap(f => ['--driver', `${REPO}/examples/${f}.ts`]);
const U = (n: number) => `83b8f4f2-509f-382f-3c1e-e6bfe0fa${n.toString(16).padStart(4, '0')}`;

t.test('every example, mounted', async t => {
  const d = await startDaemon(t, { command: mdevfsMount(...drivers) });
  const p = d.p;
  const types = (parent: string) => `class/mdev_bus/${parent}/mdev_supported_types`;
  const read = (rel: string) => readOnce(p(rel));
  const write = (rel: string, data: string) => writeOnce(p(rel), data);

  t.same(await one(['listdir', p('class/mdev_bus')]), [
    '0.0.0313',
    '0000:00:02.0',
    '0000:3b:00.0',
    '0000:d8:00.0',
    'matrix',
    'mbochs',
    'mdpy',
    'mtty',
  ]);

  t.test('kernel samples', async t => {
    t.equal(await read(`${types('mtty')}/mtty-2/name`), 'Dual port serial\n');
    t.same(await one(['access', p(`${types('mtty')}/mtty-2/description`), 'F_OK']), false, 'no description');
    t.equal(await write(`${types('mtty')}/mtty-2/create`, U(1)), 36);
    t.equal(await read(`bus/mdev/devices/${U(1)}/vendor/sample_mdev_dev`), `This is MDEV ${U(1)}\n`);
    t.equal(await read(`${types('mtty')}/mtty-1/available_instances`), '22\n');
    t.equal(await read(`${types('mdpy')}/mdpy-hd/description`), 'virtual display, 1920x1080 framebuffer\n');
    t.equal(await read(`${types('mbochs')}/mbochs-large/available_instances`), '4\n');
  });

  t.test('NVIDIA: one type per GPU', async t => {
    const g = types('0000:3b:00.0');
    t.equal(await read(`${g}/nvidia-231/name`), 'GRID T4-2Q\n');
    t.equal(await read('bus/pci/devices/0000:3b:00.0/vendor'), '0x10de\n');
    t.equal(await read('bus/pci/devices/0000:3b:00.0/class'), '0x030200\n');
    t.equal(await write(`${g}/nvidia-231/create`, U(2)), 36);
    t.equal(await read(`${g}/nvidia-231/available_instances`), '7\n');
    t.equal(await read(`${g}/nvidia-222/available_instances`), '0\n');
    t.equal(await read(`${types('0000:d8:00.0')}/nvidia-222/available_instances`), '16\n');
    t.equal(await write(`${g}/nvidia-222/create`, U(3)), 'EINVAL');
    t.equal(await write(`bus/mdev/devices/${U(2)}/nvidia/vgpu_params`, 'frame_rate_limiter=0\n'), 21);
    t.equal(await read(`bus/mdev/devices/${U(2)}/nvidia/vgpu_params`), 'frame_rate_limiter=0\n');
    t.equal(await write(`bus/mdev/devices/${U(2)}/nvidia/vgpu_params`, 'nonsense\n'), 'EINVAL');
    t.equal(await write(`bus/mdev/devices/${U(2)}/remove`, '1'), 1);
    t.equal(await read(`${g}/nvidia-222/available_instances`), '16\n');
  });

  t.test('GVT-g', async t => {
    const g = types('0000:00:02.0');
    t.equal(await read(`${g}/i915-GVTg_V5_4/name`), 'GVTg_V5_4\n');
    t.equal(await write(`${g}/i915-GVTg_V5_4/create`, U(4)), 36);
    t.equal(await read(`bus/mdev/devices/${U(4)}/intel_vgpu/vgpu_id`), '1\n');
    // low 768, high 2176, fences 24 left: _8 min(12, 5, 6), _1 min(1, 1, 6)
    t.equal(await read(`${g}/i915-GVTg_V5_8/available_instances`), '5\n');
    t.equal(await read(`${g}/i915-GVTg_V5_1/available_instances`), '1\n');
  });

  t.test('vfio_ap and vfio_ccw', async t => {
    const m = types('matrix');
    t.equal(await write(`${m}/vfio_ap-passthrough/create`, U(5)), 36);
    t.equal(await write(`${m}/vfio_ap-passthrough/create`, U(6)), 36);
    const a = `bus/mdev/devices/${U(5)}`;
    const b = `bus/mdev/devices/${U(6)}`;
    t.equal(await write(`${a}/assign_adapter`, '5\n'), 2);
    t.equal(await write(`${a}/assign_domain`, '0xab\n'), 5);
    t.equal(await read(`${a}/matrix`), '05.00ab\n');
    t.equal(await write(`${a}/assign_adapter`, '256\n'), 'ENODEV');
    t.equal(await write(`${a}/assign_adapter`, 'x\n'), 'EINVAL');
    t.same(await read(`${a}/assign_adapter`), { errno: 'EACCES' }, 'write-only');
    t.equal(await write(`${b}/assign_adapter`, '5\n'), 2);
    t.equal(await write(`${b}/assign_domain`, '0xab\n'), 'EADDRINUSE');
    // ap_config: the three masks in one line, as mdevctl's automation reads and writes them.
    const z = '0'.repeat(64);
    t.equal(await read(`${a}/ap_config`), `0x04${z.slice(2)},0x${z.slice(0, 42)}1${z.slice(43)},0x${z}\n`, 'adapter 5, domain 0xab');
    t.equal(await write(`${a}/ap_config`, '0x06,0x08,0x\n'), 13);
    t.equal(await read(`${a}/matrix`), '05.0004\n06.0004\n');
    // strsep finds a third, empty mask after a newline, but none without one.
    t.equal(await write(`${a}/ap_config`, '0x06,0x08'), 'EINVAL');
    t.equal(await read(`${a}/matrix`), '05.0004\n06.0004\n', 'a refused write changes nothing');

    const c = types('0.0.0313');
    t.equal(await read(`${c}/vfio_ccw-io/device_api`), 'vfio-ccw\n');
    t.equal(await write(`${c}/vfio_ccw-io/create`, U(7)), 36);
    t.equal(await write(`${c}/vfio_ccw-io/create`, U(8)), 'EUSERS');
  });
});
