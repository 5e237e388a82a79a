/**
 * A PCI function's uevent variables: what its `uevent` file shows
 * (pci_uevent's PCI_*, MODALIAS), with dev_uevent's DRIVER first while a
 * driver is bound, and never otherwise (drivers/base/core.c dev_uevent).
 */
import type { CoreContext, LockToken } from './context.js';
import { errorMessage } from './errno.js';
import type { PciDeviceImpl } from './pci-objects.js';
import { asShowResult } from './show.js';
import { parseUeventVars } from './uevents.js';

/** The device's uevent variables (what its `uevent` file shows), DRIVER first while bound (dev_uevent). */
export async function pciUeventVars(ctx: CoreContext, dev: PciDeviceImpl, token?: LockToken): Promise<Array<[string, string]>> {
  const attr = (dev.device.attrs ?? [])
    .filter(g => !g.name)
    .flatMap(g => g.attrs)
    .find(a => a.name === 'uevent');
  let vars: Array<[string, string]> = [];
  const show = attr?.show;
  if (attr && show) {
    try {
      const text = asShowResult(await ctx.call(() => show.call(attr, dev), `${dev.name}: uevent show`, token), 'uevent');
      vars = parseUeventVars(typeof text === 'string' ? text : Buffer.from(text).toString('utf8'));
    } catch (e) {
      ctx.log(`${dev.name}: uevent variables: ${errorMessage(e)}`);
    }
  }
  vars = vars.filter(([k]) => k !== 'DRIVER');
  return dev.driver !== undefined ? [['DRIVER', dev.driver], ...vars] : vars;
}
