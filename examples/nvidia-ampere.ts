/**
 * NVIDIA vGPU on Ampere (here an NVIDIA A10, 24 GB): the GPU is an SR-IOV PF
 * bound to `nvidia`, and each of its VFs is an mdev parent
 * (/sys/class/mdev_bus/0000:41:00.4 ...) holding at most one vGPU. The PF
 * itself is no mdev parent.
 *
 * From public sources:
 * - the PF 10de:2236 "GA102GL [A10]" and its VFs, also 10de:2236, from
 *   function 4 on (0000:41:00.4), each listing every type (a public Incus
 *   resource dump of an A10 host: types 588 A10-1B ... 605 A10-24A, named
 *   "NVIDIA A10-<profile>"),
 * - available_instances on a VF is 0 or 1, and falls to 0 on every VF once
 *   the vGPUs of the running type fill the GPU; time-sliced vGPU before
 *   release 17 runs one type per GPU (NVIDIA vGPU user guide), so while any
 *   vGPU exists every other type reads 0 on every VF,
 * - descriptions "num_heads=…, frl_config=…, framebuffer=…M,
 *   max_resolution=…, max_instance=…" as on the T4 (nvidia-vgpu.ts).
 * What mdevfs chose is in nvidia-choices.ts.
 */
import { MdevError, type MdevType, type ParentOps, type PciDevice, type VendorPlugin } from 'mdevfs';
import { A10_TOTAL_VFS, NO_ROOM, REFUSE_DISABLE, VF_FULL, WRONG_TYPE } from './nvidia-choices.js';
import { SLOTS, sriovGpu, type GpuModel } from './nvidia-sriov.js';

const A10_FRAMEBUFFER_MB = 24576;

const A10: GpuModel = {
  device: 0x2236,
  vfDevice: 0x2236,
  subsystemDevice: 0x1482,
  totalVfs: A10_TOTAL_VFS,
  link: { speed: 16, width: 16 }, // PCIe gen4 x16
};

interface A10Profile {
  id: number;
  profile: string;
  fbMB: number;
}

// id, profile, framebuffer: B (2 heads at 45 fps), Q (4 heads), A (1 head, apps).
const A10_PROFILES: A10Profile[] = [
  ['1B', 1],
  ['2B', 2],
  ['1Q', 1],
  ['2Q', 2],
  ['3Q', 3],
  ['4Q', 4],
  ['6Q', 6],
  ['8Q', 8],
  ['12Q', 12],
  ['24Q', 24],
  ['1A', 1],
  ['2A', 2],
  ['3A', 3],
  ['4A', 4],
  ['6A', 6],
  ['8A', 8],
  ['12A', 12],
  ['24A', 24],
].map(([profile, gb], i) => ({ id: 588 + i, profile: profile as string, fbMB: (gb as number) * 1024 }));

const series = (p: A10Profile): string => p.profile.slice(-1);
const maxInstance = (p: A10Profile): number => Math.min(A10_FRAMEBUFFER_MB / p.fbMB, A10_TOTAL_VFS);

const a10Types = A10_PROFILES.map(p => ({
  id: String(p.id),
  name: `NVIDIA A10-${p.profile}`,
  description:
    `num_heads=${series(p) === 'A' ? 1 : 4}, frl_config=${series(p) === 'B' ? 45 : 60}, framebuffer=${p.fbMB}M, ` +
    `max_resolution=${series(p) === 'A' ? '1280x1024' : '7680x4320'}, max_instance=${maxInstance(p)}\n`,
  data: p,
}));
const profile = (type: MdevType): A10Profile => type.spec.data as A10Profile;

/** One GPU: the type it runs and its vGPUs; each VF holds at most one. */
interface GpuState {
  running: string | undefined;
  count: number;
  busy: Set<string>;
}

function vfOps(gpu: GpuState, vf: PciDevice): ParentOps<unknown> {
  return {
    driver: 'nvidia-vgpu-vfio',
    deviceApi: 'vfio-pci',
    types: a10Types,
    getAvailable(type) {
      if (gpu.busy.has(vf.name)) return 0;
      if (gpu.count > 0 && gpu.running !== type.spec.id) return 0;
      return gpu.count < maxInstance(profile(type)) ? 1 : 0;
    },
    create(dev) {
      if (gpu.busy.has(vf.name)) throw new MdevError(VF_FULL, `${vf.name} already holds a vGPU`);
      if (gpu.count > 0 && gpu.running !== dev.type.spec.id) {
        throw new MdevError(WRONG_TYPE, `the GPU runs nvidia-${gpu.running}; ${dev.type.name} cannot be added`);
      }
      if (gpu.count >= maxInstance(profile(dev.type))) throw new MdevError(NO_ROOM, `no framebuffer left for ${dev.type.name}`);
      gpu.running = dev.type.spec.id;
      gpu.count++;
      gpu.busy.add(vf.name);
    },
    remove() {
      gpu.busy.delete(vf.name);
      if (--gpu.count === 0) gpu.running = undefined;
    },
  };
}

export interface AmpereOptions {
  /** How many A10 boards (1-2). Default 1. */
  gpus?: number;
  /** VFs enabled at start (0 to 24). Default all. */
  numVfs?: number;
}

export function createAmperePlugin(opts: AmpereOptions = {}): VendorPlugin {
  const gpus = opts.gpus ?? 1;
  if (!Number.isInteger(gpus) || gpus < 1 || gpus > SLOTS.length) throw new RangeError(`gpus must be 1 to ${SLOTS.length}`);
  return {
    name: 'nvidia-ampere',
    async init(mdev) {
      for (const slot of SLOTS.slice(0, gpus)) {
        const gpu: GpuState = { running: undefined, count: 0, busy: new Set() };
        const spec = sriovGpu(
          slot,
          A10,
          {
            configure(pf, n) {
              if (n === 0 && gpu.count > 0) throw new MdevError(REFUSE_DISABLE, `${pf.name}: ${gpu.count} vGPUs exist`);
            },
            vf: {
              // The VF's nvidia probe registers it with the mdev core; its remove unregisters it.
              probe: async vf => void (await mdev.registerDevice({ path: vf.device.path, typePrefix: 'nvidia' }, vfOps(gpu, vf))),
              remove: vf => mdev.unregisterDevice(vf.name),
            },
          },
          opts.numVfs ?? A10_TOTAL_VFS,
        );
        await mdev.addPciDevice(spec);
      }
    },
  };
}

export default createAmperePlugin();
