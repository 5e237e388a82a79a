/**
 * The numbers the base already uses, read once at start so the core hands
 * out others (CoreOptions.hostIds): IOMMU group ids (kernel/iommu_groups/<id>),
 * VFIO group char device minors (class/vfio/<group>/dev, "major:minor") and
 * vfio<k> device indexes (class/vfio-dev/vfio<k>). A base without them, such
 * as a captured tree, simply reserves nothing.
 */
import type { HostIds } from '../core/model.js';
import type { BaseDir } from './base-dir.js';

function names(base: BaseDir, rel: string): string[] {
  try {
    return base.names(rel);
  } catch {
    return [];
  }
}

const decimal = (s: string): number | undefined => (/^\d{1,9}$/.test(s) ? Number(s) : undefined);

export async function readHostIds(base: BaseDir): Promise<{ [K in keyof HostIds]-?: number[] }> {
  const iommuGroups = names(base, '/kernel/iommu_groups').flatMap(n => decimal(n) ?? []);
  const vfioDevices = names(base, '/class/vfio-dev').flatMap(n => (n.startsWith('vfio') ? (decimal(n.slice(4)) ?? []) : []));
  const vfioGroupMinors: number[] = [];
  for (const n of names(base, '/class/vfio')) {
    // class/vfio/vfio is the container's misc device on some kernels; only groups count.
    if (decimal(n) === undefined) continue;
    const text = await base.readText(`/class/vfio/${n}/dev`).catch(() => '');
    const minor = decimal(text.trim().split(':')[1] ?? '');
    if (minor !== undefined) vfioGroupMinors.push(minor);
  }
  return { iommuGroups, vfioGroupMinors, vfioDevices };
}
