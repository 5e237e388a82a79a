/**
 * Page pinning for vendor drivers (vfio_pin_pages / vfio_unpin_pages in their
 * 2016 form, drivers/vfio/vfio.c in 4.10) and the DMA-unmap notifier that
 * tells a vendor to let pages go.
 */
import { VFIO_PIN_PAGES_MAX_ENTRIES, type DmaUnmapEvent, type MdevDevice } from './api.js';
import type { CoreContext } from './context.js';
import { MdevError, errorMessage } from './errno.js';
import { DeviceImpl } from './objects.js';

function openDevice(ctx: CoreContext, dev: MdevDevice, op: string): DeviceImpl {
  if (!(dev instanceof DeviceImpl) || ctx.devices.get(dev.uuid) !== dev) {
    throw new MdevError('EINVAL', `${op}: not a device of this core`);
  }
  if (dev.k.openCount === 0 || !dev.k.container) {
    throw new MdevError('EINVAL', `${op}: ${dev.uuid} is not open with a container attached`);
  }
  return dev;
}

function checkPfnList(userPfns: readonly number[], op: string): void {
  if (!Array.isArray(userPfns) || userPfns.length === 0) throw new MdevError('EINVAL', `${op}: no pfns`);
  if (userPfns.length > VFIO_PIN_PAGES_MAX_ENTRIES) {
    throw new MdevError('E2BIG', `${op}: ${userPfns.length} pfns, at most ${VFIO_PIN_PAGES_MAX_ENTRIES}`);
  }
}

export async function pinPages(ctx: CoreContext, dev: MdevDevice, userPfns: readonly number[], prot: number): Promise<number[]> {
  checkPfnList(userPfns, 'pinPages');
  const d = openDevice(ctx, dev, 'pinPages');
  const container = d.k.container!;
  if (!container.pinning) throw new MdevError('ENOTTY', 'pinPages: the IOMMU backend cannot pin pages');
  if (!d.parent.ops.notifier) throw new MdevError('EINVAL', `pinPages: ${d.parent.name} has no DMA-unmap notifier`);
  if (!Number.isInteger(prot)) throw new MdevError('EINVAL', 'pinPages: bad prot');
  return container.pin(d, userPfns, prot);
}

export async function unpinPages(ctx: CoreContext, dev: MdevDevice, userPfns: readonly number[]): Promise<number> {
  checkPfnList(userPfns, 'unpinPages');
  const d = openDevice(ctx, dev, 'unpinPages');
  const container = d.k.container!;
  if (!container.pinning) throw new MdevError('ENOTTY', 'unpinPages: the IOMMU backend cannot pin pages');
  return container.unpin(d, userPfns);
}

/** Call the vendor's notifier for an unmap (bounded; its failure is only logged). */
export async function notifyUnmap(ctx: CoreContext, dev: DeviceImpl, event: DmaUnmapEvent): Promise<void> {
  const ops = dev.parent.ops;
  const notifier = ops.notifier;
  if (!notifier) return;
  try {
    await ctx.call(() => notifier.call(ops, dev, event), `${dev.parent.name}: notifier(${dev.uuid})`);
  } catch (e) {
    ctx.log(errorMessage(e));
  }
}
