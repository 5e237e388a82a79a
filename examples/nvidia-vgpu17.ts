/**
 * NVIDIA vGPU 17+ on Ada (here an NVIDIA L40S, 48 GB): no mdev at all. The
 * GPU is an SR-IOV PF bound to `nvidia`; each VF, bound to `nvidia` too, has
 * an `nvidia/` directory (NVIDIA's "vendor-specific VFIO framework"):
 *
 * - creatable_vgpu_types: "ID    : vGPU Name" and one "<id padded to 6>: <name>"
 *   line per type that can still be created on this VF (the format of public
 *   fixtures and NVIDIA's documentation; clients parse "<id> : <name>");
 *   shrinking as siblings hold vGPUs, growing back as they are destroyed,
 * - current_vgpu_type: the VF's vGPU type id, 0 for none; write an id to
 *   create the vGPU, 0 to destroy it (vgpu-device-manager, KubeVirt 1.9),
 * - vgpu_params, gpu_instance_id, placement_id.
 *
 * Placement follows NVIDIA's default for time-sliced vGPUs on Ada (equal-size
 * mode, the vGPU user guide): every vGPU on a GPU has the same framebuffer
 * size, so once one exists only the types of that size stay creatable, and
 * only while fewer than framebuffer/size exist. The PF has no nvidia/
 * directory. What mdevfs chose is in nvidia-choices.ts.
 */
import { MdevError, type Attribute, type PciDevice, type VendorPlugin } from 'mdevfs';
import { L40S_TOTAL_VFS, L40S_VF_DEVICE, NOT_APPLICABLE, NOT_CREATABLE, REFUSE_DISABLE, VF_BUSY } from './nvidia-choices.js';
import { SLOTS, sriovGpu, type GpuModel } from './nvidia-sriov.js';

const L40S_FRAMEBUFFER_MB = 49152;

const L40S: GpuModel = {
  device: 0x26b9,
  vfDevice: L40S_VF_DEVICE,
  subsystemDevice: 0x1851,
  totalVfs: L40S_TOTAL_VFS,
  link: { speed: 16, width: 16 },
};

interface VgpuType {
  id: number;
  name: string;
  fbMB: number;
}

/** The Q profiles; 1147, 1148 and 1159 are public, the others nvidia-choices.ts's. */
const L40S_TYPES: VgpuType[] = [
  [1147, 1],
  [1148, 2],
  [1149, 3],
  [1150, 4],
  [1151, 6],
  [1152, 8],
  [1153, 12],
  [1154, 16],
  [1155, 24],
  [1159, 48],
].map(([id, gb]) => ({ id: id!, name: `NVIDIA L40S-${gb}Q`, fbMB: gb! * 1024 }));

const slotsOf = (t: VgpuType): number => L40S_FRAMEBUFFER_MB / t.fbMB;

/** A VF's vGPU: its type, slot and parameters. */
interface Vgpu {
  type: VgpuType;
  slot: number;
  params: string;
}

/** One GPU: each VF's vGPU, and the slot a free VF asked for. */
class Gpu {
  readonly vgpus = new Map<string, Vgpu>();
  readonly requested = new Map<string, number>();

  /** Equal-size mode: the size every vGPU has, if any exists. */
  get size(): number | undefined {
    for (const v of this.vgpus.values()) return v.type.fbMB;
    return undefined;
  }

  creatable(vf: string): VgpuType[] {
    if (this.vgpus.has(vf)) return [];
    const size = this.size;
    return L40S_TYPES.filter(t => (size === undefined || t.fbMB === size) && this.vgpus.size < slotsOf(t));
  }

  freeSlot(): number {
    const used = new Set([...this.vgpus.values()].map(v => v.slot));
    let s = 0;
    while (used.has(s)) s++;
    return s;
  }

  create(vf: string, id: number): void {
    if (this.vgpus.has(vf)) throw new MdevError(VF_BUSY, `${vf} holds a vGPU of type ${this.vgpus.get(vf)!.type.id}`);
    const t = this.creatable(vf).find(c => c.id === id);
    if (!t) throw new MdevError(NOT_CREATABLE, `type ${id} is not creatable on ${vf}`);
    const want = this.requested.get(vf);
    const taken = new Set([...this.vgpus.values()].map(v => v.slot));
    if (want !== undefined && (want >= slotsOf(t) || taken.has(want))) {
      throw new MdevError('EINVAL', `placement ${want} is not free for ${t.name}`);
    }
    this.vgpus.set(vf, { type: t, slot: want ?? this.freeSlot(), params: '' });
    this.requested.delete(vf);
  }

  destroy(vf: string): void {
    this.vgpus.delete(vf);
  }
}

/** A decimal number, one optional newline (kstrtouint, base 10). */
function decimal(value: string): number {
  const text = value.endsWith('\n') ? value.slice(0, -1) : value;
  if (!/^\+?[0-9]+$/.test(text) || Number(text) > 0xffffffff) throw new MdevError('EINVAL', `not a number: ${JSON.stringify(value)}`);
  return Number(text);
}

const PARAM = /^[A-Za-z_][A-Za-z0-9_]*=[^\s,=]+$/;

function nvidiaFiles(gpu: Gpu): Attribute<PciDevice>[] {
  return [
    {
      name: 'creatable_vgpu_types',
      show: vf => ['ID    : vGPU Name\n', ...gpu.creatable(vf.name).map(t => `${String(t.id).padEnd(6)}: ${t.name}\n`)].join(''),
    },
    {
      name: 'current_vgpu_type',
      mode: 0o644,
      show: vf => `${gpu.vgpus.get(vf.name)?.type.id ?? 0}\n`,
      store(vf, value) {
        const id = decimal(value);
        if (id === 0) gpu.destroy(vf.name);
        else gpu.create(vf.name, id);
      },
    },
    {
      name: 'vgpu_params',
      mode: 0o644,
      show: vf => `${gpu.vgpus.get(vf.name)?.params ?? ''}\n`,
      store(vf, value) {
        const v = gpu.vgpus.get(vf.name);
        if (!v) throw new MdevError('EINVAL', `${vf.name} holds no vGPU`);
        const text = value.endsWith('\n') ? value.slice(0, -1) : value;
        if (text.trim() === '') v.params = '';
        else if (text.split(',').every(kv => PARAM.test(kv))) v.params = text;
        else throw new MdevError('EINVAL', `vgpu_params: expected key=value[,key=value], got ${JSON.stringify(text)}`);
      },
    },
    {
      name: 'gpu_instance_id',
      mode: 0o644,
      show: () => NOT_APPLICABLE,
      store() {
        throw new MdevError('EINVAL', 'the L40S has no MIG GPU instances');
      },
    },
    {
      name: 'placement_id',
      mode: 0o644,
      show: vf => {
        const slot = gpu.vgpus.get(vf.name)?.slot ?? gpu.requested.get(vf.name);
        return slot === undefined ? NOT_APPLICABLE : `${slot}\n`;
      },
      store(vf, value) {
        if (gpu.vgpus.has(vf.name)) throw new MdevError(VF_BUSY, `${vf.name} holds a vGPU`);
        gpu.requested.set(vf.name, decimal(value));
      },
    },
  ];
}

export interface Vgpu17Options {
  /** How many L40S boards (1-2). Default 1. */
  gpus?: number;
  /** VFs enabled at start (0 to 32). Default all. */
  numVfs?: number;
}

export function createVgpu17Plugin(opts: Vgpu17Options = {}): VendorPlugin {
  const gpus = opts.gpus ?? 1;
  if (!Number.isInteger(gpus) || gpus < 1 || gpus > SLOTS.length) throw new RangeError(`gpus must be 1 to ${SLOTS.length}`);
  return {
    name: 'nvidia-vgpu17',
    async init(mdev) {
      for (const slot of SLOTS.slice(0, gpus)) {
        const gpu = new Gpu();
        const spec = sriovGpu(
          slot,
          L40S,
          {
            configure(pf, n) {
              if (n === 0 && gpu.vgpus.size > 0) throw new MdevError(REFUSE_DISABLE, `${pf.name}: ${gpu.vgpus.size} vGPUs exist`);
            },
            vf: {
              driverAttrs: [{ name: 'nvidia', attrs: nvidiaFiles(gpu) }],
              remove: vf => {
                gpu.destroy(vf.name);
                gpu.requested.delete(vf.name);
              },
            },
          },
          opts.numVfs ?? L40S_TOTAL_VFS,
        );
        await mdev.addPciDevice(spec);
      }
    },
  };
}

export default createVgpu17Plugin();
