/**
 * Everything the NVIDIA SR-IOV examples (nvidia-ampere.ts, nvidia-vgpu17.ts)
 * had to choose because NVIDIA's host driver is closed and its behaviour is
 * not publicly documented: kept here, in one place, and listed in
 * examples/README.md ("What mdevfs chose for NVIDIA"). Everything else in
 * those files follows public sources, named where it is used.
 *
 * Emulator-defined (not observed on hardware):
 * - SR-IOV layout: sriov_totalvfs (A10: 24, L40S: 32), First VF Offset 4 and
 *   stride 1 (the public reports show VF 0 at function 4: 0000:41:00.4),
 *   each VF's BAR sizes, and the VF IOMMU groups (VF_GROUP_BASE + index).
 * - The VF Device ID of the L40S (the PF's, 0x26b9; the A10's VF id 0x2236
 *   is the public one).
 * - sriov_numvfs 0 while a VF holds a vGPU: the PF driver's sriov_configure
 *   refuses with EBUSY (REFUSE_DISABLE); enabling is allowed from 0 to any
 *   count.
 * - Ampere (mdev on VFs): a create on a VF that already holds a vGPU fails
 *   with ENOSPC (VF_FULL), a type that cannot join the GPU's running type
 *   with EINVAL (WRONG_TYPE), one over the type's max_instance with ENOSPC.
 * - vGPU 17 (nvidia/ on VFs): creatable_vgpu_types of a VF that holds a
 *   vGPU lists no type (header only); writing a type id that the VF does
 *   not list fails with EINVAL; a non-zero id while the VF holds a vGPU with
 *   EBUSY; 0 on a free VF does nothing; input that is not a decimal number
 *   fails with EINVAL.
 * - placement_id reads "Not Applicable" with no vGPU and no requested
 *   placement, else the slot: the index of the vGPU's equal share of the
 *   framebuffer. A write (decimal) on a free VF requests a slot for the next
 *   create, which fails with EINVAL if the slot is taken or out of range for
 *   the type; a write while the VF holds a vGPU fails with EBUSY.
 * - gpu_instance_id reads "Not Applicable" (the L40S has no MIG); a write
 *   fails with EINVAL.
 * - vgpu_params: as the T4 example's, but only while the VF holds a vGPU
 *   (EINVAL otherwise); destroying the vGPU clears it.
 * - The type ids of the L40S Q profiles other than 1147 (L40S-1Q), 1148
 *   (L40S-2Q) and 1159 (L40S-48Q), which public fixtures show.
 */
import type { ErrnoName } from 'mdevfs';

export const FIRST_VF_OFFSET = 4;
export const VF_STRIDE = 1;
export const A10_TOTAL_VFS = 24;
export const L40S_TOTAL_VFS = 32;
export const L40S_VF_DEVICE = 0x26b9;

/** sriov_configure(0) while any VF of the GPU holds a vGPU. */
export const REFUSE_DISABLE: ErrnoName = 'EBUSY';
/** Ampere: a second vGPU on one VF. */
export const VF_FULL: ErrnoName = 'ENOSPC';
/** Ampere: a type that cannot join the GPU's running type. */
export const WRONG_TYPE: ErrnoName = 'EINVAL';
/** Ampere: more vGPUs of the type than its max_instance. */
export const NO_ROOM: ErrnoName = 'ENOSPC';
/** vGPU 17: current_vgpu_type written with a type the VF does not list. */
export const NOT_CREATABLE: ErrnoName = 'EINVAL';
/** vGPU 17: a non-zero current_vgpu_type (or placement_id) while the VF holds a vGPU. */
export const VF_BUSY: ErrnoName = 'EBUSY';

/** What placement_id and gpu_instance_id show when nothing applies. */
export const NOT_APPLICABLE = 'Not Applicable\n';

/** The VF IOMMU group: the GPU's base plus the VF index (one group per VF). */
export const vfGroup = (base: number, index: number): number => base + index;
