/**
 * Intel GVT-g (KVMGT): the i915 driver splits a gen8/gen9 integrated GPU into
 * vGPUs (drivers/gpu/drm/i915/gvt/vgpu.c, aperture_gm.c, kvmgt.c).
 *
 * What it shows: capacity model 2 over a shared multi-resource pool. Every vGPU
 * takes a slice of three host resources — low graphics memory (inside the CPU-
 * visible aperture), high graphics memory (the rest of the 4 GB GGTT) and fence
 * registers — after the host keeps 128 MB low, 384 MB high and 4 fences for
 * itself. available_instances of a type is (kvmgt.c intel_vgpu_get_available)
 *
 *     min(free_low / type_low, free_high / type_high, free_fences / type_fences)
 *
 * so creating one type lowers the others unevenly. Creation fails with ENOSPC
 * when a resource is short (aperture_gm.c alloc_resource) or when the 7 vGPU
 * ids are used up (idr_alloc over [1, GVT_MAX_VGPU = 8)).
 *
 * Types exist only while the aperture can hold at least one of them: with the
 * common 256 MB BIOS default only GVTg_V5_8 and _4 appear; the 1024 MB this
 * example defaults to (what GVT-g setup guides recommend) gives all four:
 * _8 7, _4 5, _2 2, _1 1. Types have no pretty name, so `name` shows the id;
 * before 6.1 the type directory had no `name` file at all.
 *
 * While a vGPU is open (4.10: its KVM handle is valid), the legacy profile's
 * remove refuses with EBUSY, as 4.10's intel_vgpu_remove did
 * (`if (handle_valid(vgpu->handle)) return -EBUSY;`); today's kernel waits
 * for the close instead.
 */
import { MdevError, type MdevType, type MdevTypeSpec, type ParentOps, type VendorPlugin } from 'mdevfs';
import { PCI_RES_IO, PCI_RES_MEM64, PCI_RES_MEM64_PREF, pciParent } from './pci-parent.js';

// gvt.h
const HOST_LOW_GM_MB = 128;
const HOST_HIGH_GM_MB = 384;
const HOST_FENCE = 4;
const GVT_MAX_VGPU = 8; // vGPU ids 1..7; 0 is the idle vGPU

/** vgpu.c vgpu_types[]: low/high GM in MB, fences, weight (16 / instances), EDID resolution. */
const VGPU_CONFIGS = [
  { name: '8', lowMB: 64, highMB: 384, fence: 4, weight: 2, resolution: '1024x768' },
  { name: '4', lowMB: 128, highMB: 512, fence: 4, weight: 4, resolution: '1920x1200' },
  { name: '2', lowMB: 256, highMB: 1024, fence: 4, weight: 8, resolution: '1920x1200' },
  { name: '1', lowMB: 512, highMB: 2048, fence: 4, weight: 16, resolution: '1920x1200' },
];
type VgpuConfig = (typeof VGPU_CONFIGS)[number];
const conf = (type: MdevType): VgpuConfig => type.spec.data as VgpuConfig;

export interface GvtgOptions {
  /** Aperture (BAR2, the mappable part of the GGTT) in MB, as set in the BIOS. Default 1024. */
  apertureMB?: number;
  /** GGTT address space in MB: 4096 on gen8/gen9 (8 MB of 8-byte PTEs). */
  ggttMB?: number;
  /** Fence registers: 32 on gen7 and later. */
  fences?: number;
  /** 9 (Skylake to Comet Lake, GVTg_V5_*) or 8 (Broadwell, GVTg_V4_*). Default 9. */
  gen?: 8 | 9;
}

/** The iGPU: Coffee Lake-S GT2, UHD Graphics 630 (a GVT-g capable gen9.5 part), at 00:02.0. */
function igpu(apertureMB: number) {
  return pciParent({
    address: '0000:00:02.0',
    under: 'devices/pci0000:00',
    driver: 'i915',
    vendor: 0x8086,
    device: 0x3e92,
    subsystemVendor: 0x1028, // board-specific; an example OEM id
    subsystemDevice: 0x085a,
    classCode: 0x030000, // VGA compatible controller
    revision: 0x02,
    // No `link`: the iGPU is a Root Complex Integrated Endpoint (its config space has no PCIe link).
    numaNode: -1,
    irq: 137,
    localCpulist: '0-11',
    iommuGroup: 1,
    resources: [
      { index: 0, start: 0xf6000000n, size: 16n << 20n, flags: PCI_RES_MEM64 }, // GTTMMADR
      { index: 2, start: 0x4000000000n, size: BigInt(apertureMB) << 20n, flags: PCI_RES_MEM64_PREF }, // GMADR (aperture)
      { index: 4, start: 0xf000n, size: 64n, flags: PCI_RES_IO },
    ],
  });
}

export function createGvtgPlugin(opts: GvtgOptions = {}): VendorPlugin {
  const apertureMB = opts.apertureMB ?? 1024;
  const ggttMB = opts.ggttMB ?? 4096;
  const fences = opts.fences ?? 32;
  const gen = opts.gen ?? 9;

  return {
    name: 'kvmgt',
    async init(mdev) {
      const legacy = mdev.profile === 'legacy';
      // intel_gvt: what the vGPUs hold, and which ids are taken.
      const allocated = { lowMB: 0, highMB: 0, fences: 0 };
      const ids = new Set<number>();
      let updated = false; // pre-6.1: avail_instance ignores fences until the first create/destroy

      const free = () => ({
        lowMB: apertureMB - HOST_LOW_GM_MB - allocated.lowMB,
        highMB: ggttMB - apertureMB - HOST_HIGH_GM_MB - allocated.highMB,
        fences: fences - HOST_FENCE - allocated.fences,
      });

      // intel_gvt_init_vgpu_types: stop at the first type the aperture cannot hold once.
      const supported: VgpuConfig[] = [];
      for (const c of VGPU_CONFIGS) {
        if (Math.floor((apertureMB - HOST_LOW_GM_MB) / c.lowMB) === 0) break;
        supported.push(c);
      }
      const types: MdevTypeSpec[] = supported.map(c => ({
        id: `GVTg_V${gen === 8 ? 4 : 5}_${c.name}`,
        description:
          `low_gm_size: ${c.lowMB}MB\nhigh_gm_size: ${c.highMB}MB\nfence: ${c.fence}\n` +
          `resolution: ${c.resolution}\nweight: ${c.weight}\n`,
        legacyAttrs: ['available_instances', 'device_api', 'description'],
        data: c,
      }));

      const ops: ParentOps<Vgpu> = {
        driver: 'intel_vgpu_mdev',
        deviceApi: 'vfio-pci',
        types,
        getAvailable(type) {
          const c = conf(type);
          const f = free();
          const byGm = Math.min(Math.floor(f.lowMB / c.lowMB), Math.floor(f.highMB / c.highMB));
          if (legacy && !updated) return byGm;
          return Math.min(byGm, Math.floor(f.fences / c.fence));
        },
        create(dev) {
          const c = conf(dev.type);
          // idr_alloc(&gvt->vgpu_idr, vgpu, 1, GVT_MAX_VGPU): the lowest free id.
          let id = 1;
          while (ids.has(id)) id++;
          if (id >= GVT_MAX_VGPU) throw new MdevError('ENOSPC', 'no free vGPU id');
          // alloc_resource: low GM, then high GM, then fences.
          const f = free();
          for (const [item, want, avail] of [
            ['low GM space', c.lowMB, f.lowMB],
            ['high GM space', c.highMB, f.highMB],
            ['fence', c.fence, f.fences],
          ] as const) {
            if (want > avail) throw new MdevError('ENOSPC', `fail to allocate resource ${item}`);
          }
          allocated.lowMB += c.lowMB;
          allocated.highMB += c.highMB;
          allocated.fences += c.fence;
          ids.add(id);
          updated = true;
          dev.drvdata = { id, handle: false };
        },
        // intel_vgpu_open / intel_vgpu_release: the guest handle lives while the vGPU is open.
        open(dev) {
          dev.drvdata!.handle = true;
        },
        close(dev) {
          dev.drvdata!.handle = false;
        },
        remove(dev) {
          const vgpu = dev.drvdata!;
          if (legacy && vgpu.handle) throw new MdevError('EBUSY', `vGPU ${vgpu.id} is in use`);
          const c = conf(dev.type);
          allocated.lowMB -= c.lowMB;
          allocated.highMB -= c.highMB;
          allocated.fences -= c.fence;
          ids.delete(vgpu.id);
          updated = true;
        },
        mdevAttrGroups: [
          {
            name: 'intel_vgpu',
            attrs: [{ name: 'vgpu_id', show: dev => `${dev.drvdata!.id}\n` }],
          },
        ],
      };

      await mdev.registerDevice(igpu(apertureMB), ops);
    },
  };
}

/** struct intel_vgpu, reduced (a vGPU's drvdata): its id and whether a guest holds it (handle_valid). */
interface Vgpu {
  id: number;
  handle: boolean;
}

export default createGvtgPlugin();
