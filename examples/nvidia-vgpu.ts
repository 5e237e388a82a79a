/**
 * NVIDIA vGPU (time-sliced, pre-Ada, e.g. the GRID/vGPU 13–16 host driver) on
 * NVIDIA T4 boards: the out-of-tree `nvidia` PCI driver registers each GPU as
 * an mdev parent, and `nvidia-vgpu-vfio` is the mdev bus driver.
 *
 * What it shows:
 * - PCI parents that NVIDIA's own tools accept (vendor 0x10de, class 0x030200,
 *   numa_node, resource, iommu_group, driver; see ./pci-parent.ts), with a
 *   `config` space whose PCI Express link is gen3 (8 GT/s) x16, as a T4's,
 * - type ids `nvidia-<n>` with names `GRID T4-<profile>` (the ids are the ones
 *   real T4 hosts report: 222 T4-1B ... 234 T4-16Q),
 * - the homogeneous-GPU rule of time-sliced vGPU before release 17: a GPU runs
 *   one vGPU type at a time. While any vGPU exists on a GPU, every other type
 *   on that GPU reads 0 available; the running type reads what its share of
 *   the 16 GB framebuffer still allows; removing the last vGPU restores every
 *   maximum. Each GPU is independent.
 * - a writable per-device attribute, nvidia/vgpu_params.
 *
 * Emulator-defined behaviour (NVIDIA's module is closed source; these are
 * mdevfs choices, not observed values):
 * - creating a type that cannot coexist with the GPU's running type fails with
 *   EINVAL; creating a compatible type with no framebuffer left fails with ENOSPC,
 * - vgpu_params: malformed input fails with EINVAL; a write while the vGPU is
 *   open (the VM runs) fails with EBUSY; a blank write (" ") clears the
 *   parameters; the file reads back the accepted string plus "\n",
 * - the description is one line ending in "\n", like every sysfs attribute
 *   (mdevctl and libvirt trim it either way).
 * Omitted: T4-1B4 and the C-series (T4-4C/8C/16C) profiles, whose type ids
 * could not be confirmed; SR-IOV (Turing has none); mixed-size mode (vGPU 17+).
 */
import { MdevError, type MdevType, type ParentOps, type VendorPlugin } from 'mdevfs';
import { PCI_RES_MEM32, PCI_RES_MEM64_PREF, pciParent } from './pci-parent.js';

/** T4 framebuffer available to vGPUs, in MiB. */
const T4_FRAMEBUFFER_MB = 16384;

interface T4Profile {
  /** NVIDIA's vGPU type id: the directory is nvidia-<id>. */
  id: number;
  profile: string;
  fbMB: number;
  heads: number;
  /** Frame rate limiter: 45 fps for B-series, 60 otherwise. */
  frl: number;
  maxResolution: string;
}

const T4_PROFILES: T4Profile[] = [
  { id: 222, profile: '1B', fbMB: 1024, heads: 4, frl: 45, maxResolution: '5120x2880' },
  { id: 223, profile: '2B', fbMB: 2048, heads: 4, frl: 45, maxResolution: '5120x2880' },
  { id: 224, profile: '2B4', fbMB: 2048, heads: 4, frl: 45, maxResolution: '5120x2880' },
  { id: 225, profile: '1A', fbMB: 1024, heads: 1, frl: 60, maxResolution: '1280x1024' },
  { id: 226, profile: '2A', fbMB: 2048, heads: 1, frl: 60, maxResolution: '1280x1024' },
  { id: 227, profile: '4A', fbMB: 4096, heads: 1, frl: 60, maxResolution: '1280x1024' },
  { id: 228, profile: '8A', fbMB: 8192, heads: 1, frl: 60, maxResolution: '1280x1024' },
  { id: 229, profile: '16A', fbMB: 16384, heads: 1, frl: 60, maxResolution: '1280x1024' },
  { id: 230, profile: '1Q', fbMB: 1024, heads: 4, frl: 60, maxResolution: '5120x2880' },
  { id: 231, profile: '2Q', fbMB: 2048, heads: 4, frl: 60, maxResolution: '7680x4320' },
  { id: 232, profile: '4Q', fbMB: 4096, heads: 4, frl: 60, maxResolution: '7680x4320' },
  { id: 233, profile: '8Q', fbMB: 8192, heads: 4, frl: 60, maxResolution: '7680x4320' },
  { id: 234, profile: '16Q', fbMB: 16384, heads: 4, frl: 60, maxResolution: '7680x4320' },
];

const t4Types = T4_PROFILES.map(p => {
  const maxInstance = T4_FRAMEBUFFER_MB / p.fbMB;
  return {
    id: String(p.id),
    name: `GRID T4-${p.profile}`,
    description:
      `num_heads=${p.heads}, frl_config=${p.frl}, framebuffer=${p.fbMB}M, ` +
      `max_resolution=${p.maxResolution}, max_instance=${maxInstance}\n`,
    data: p,
  };
});

const profile = (type: MdevType): T4Profile => type.spec.data as T4Profile;

/**
 * Where the boards sit: a two-socket Skylake-SP server (Dell R740 / HPE DL380
 * Gen10 style), each GPU behind its own root port, alternating sockets.
 */
const SLOTS = [
  { bus: 0x3b, node: 0, iommuGroup: 36, irq: 182, mmio32: 0xab000000n, mmio64: 0x381fe0000000n },
  { bus: 0xd8, node: 1, iommuGroup: 123, irq: 191, mmio32: 0xee000000n, mmio64: 0x3bffe0000000n },
  { bus: 0x5e, node: 0, iommuGroup: 52, irq: 183, mmio32: 0xc5000000n, mmio64: 0x382fe0000000n },
  { bus: 0xaf, node: 1, iommuGroup: 104, irq: 192, mmio32: 0xdd000000n, mmio64: 0x3b7fe0000000n },
  { bus: 0x18, node: 0, iommuGroup: 25, irq: 181, mmio32: 0x92000000n, mmio64: 0x380fe0000000n },
  { bus: 0x86, node: 1, iommuGroup: 82, irq: 190, mmio32: 0xd3000000n, mmio64: 0x3b3fe0000000n },
];
const NODE_CPUS = ['0-15,32-47', '16-31,48-63'];
const MB = 1n << 20n;

function t4Function(slot: (typeof SLOTS)[number]) {
  const b = (n: number): string => n.toString(16).padStart(2, '0');
  return pciParent({
    address: `0000:${b(slot.bus)}:00.0`,
    under: `devices/pci0000:${b(slot.bus - 1)}/0000:${b(slot.bus - 1)}:00.0`,
    driver: 'nvidia',
    vendor: 0x10de, // NVIDIA
    device: 0x1eb8, // TU104GL [Tesla T4]
    subsystemVendor: 0x10de,
    subsystemDevice: 0x12a2,
    classCode: 0x030200, // 3D controller
    revision: 0xa1,
    link: { speed: 8, width: 16 }, // PCIe gen3 x16
    numaNode: slot.node,
    irq: slot.irq,
    localCpulist: NODE_CPUS[slot.node]!,
    iommuGroup: slot.iommuGroup,
    resources: [
      { index: 0, start: slot.mmio32, size: 16n * MB, flags: PCI_RES_MEM32 }, // registers
      { index: 1, start: slot.mmio64, size: 256n * MB, flags: PCI_RES_MEM64_PREF }, // BAR1 aperture
      { index: 3, start: slot.mmio64 + 256n * MB, size: 32n * MB, flags: PCI_RES_MEM64_PREF }, // BAR3
    ],
  });
}

/** nvidia/vgpu_params: "key=value[,key=value...]", e.g. "frame_rate_limiter=0". */
const PARAM = /^[A-Za-z_][A-Za-z0-9_]*=[^\s,=]+$/;

/** A vGPU's state (its drvdata): the accepted parameters and its open count. */
interface VgpuState {
  params: string;
  opens: number;
}

export interface NvidiaOptions {
  /** How many T4 boards (1-6). Default 2. */
  gpus?: number;
}

export function createNvidiaPlugin(opts: NvidiaOptions = {}): VendorPlugin {
  const gpus = opts.gpus ?? 2;
  if (!Number.isInteger(gpus) || gpus < 1 || gpus > SLOTS.length) {
    throw new RangeError(`gpus must be an integer from 1 to ${SLOTS.length}`);
  }
  return {
    name: 'nvidia-vgpu-vfio',
    async init(mdev) {
      for (const slot of SLOTS.slice(0, gpus)) {
        // One GPU: the type it runs, how many vGPUs, how much framebuffer they hold.
        const gpu = { running: undefined as string | undefined, count: 0, usedMB: 0 };

        const ops: ParentOps<VgpuState> = {
          driver: 'nvidia-vgpu-vfio',
          deviceApi: 'vfio-pci',
          types: t4Types,
          getAvailable(type) {
            if (gpu.count > 0 && gpu.running !== type.spec.id) return 0;
            return Math.floor((T4_FRAMEBUFFER_MB - gpu.usedMB) / profile(type).fbMB);
          },
          create(dev) {
            const p = profile(dev.type);
            if (gpu.count > 0 && gpu.running !== dev.type.spec.id) {
              throw new MdevError('EINVAL', `GPU runs ${gpu.running}; ${dev.type.name} cannot be added`);
            }
            if (gpu.usedMB + p.fbMB > T4_FRAMEBUFFER_MB) {
              throw new MdevError('ENOSPC', `no framebuffer left for ${dev.type.name}`);
            }
            gpu.running = dev.type.spec.id;
            gpu.count++;
            gpu.usedMB += p.fbMB;
            dev.drvdata = { params: '', opens: 0 };
          },
          remove(dev) {
            gpu.count--;
            gpu.usedMB -= profile(dev.type).fbMB;
            if (gpu.count === 0) gpu.running = undefined;
          },
          open(dev) {
            dev.drvdata!.opens++;
          },
          close(dev) {
            dev.drvdata!.opens--;
          },
          mdevAttrGroups: [
            {
              name: 'nvidia',
              attrs: [
                {
                  name: 'vgpu_params',
                  mode: 0o644,
                  show: dev => `${dev.drvdata!.params}\n`,
                  store(dev, value) {
                    const st = dev.drvdata!;
                    if (st.opens > 0) throw new MdevError('EBUSY', 'vGPU in use: set parameters before the VM starts');
                    const text = value.endsWith('\n') ? value.slice(0, -1) : value;
                    if (text.trim() === '') {
                      st.params = '';
                      return;
                    }
                    if (!text.split(',').every(kv => PARAM.test(kv))) {
                      throw new MdevError('EINVAL', `vgpu_params: expected key=value[,key=value], got ${JSON.stringify(text)}`);
                    }
                    st.params = text;
                  },
                },
              ],
            },
          ],
        };

        await mdev.registerDevice(t4Function(slot), ops);
      }
    },
  };
}

export default createNvidiaPlugin();
