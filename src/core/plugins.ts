/**
 * Loading and unloading vendor plugins (module_init / module_exit): a
 * plugin's init registers through its own host, and whatever it left
 * registered is unregistered when it unloads or its init fails.
 */
import type { VendorPlugin } from './api.js';
import type { CoreContext } from './context.js';
import { unregisterDriver } from './drivers.js';
import { MdevError, errorMessage, toMdevError } from './errno.js';
import { Host, PluginRecord, type HostBackend } from './host.js';
import { isEntryName } from './names.js';
import { unregisterParent } from './parents.js';
import { removePciDevice } from './pci-devices.js';
import { callPlugin } from './plugin-call.js';

export class PluginLoader {
  readonly #plugins = new Map<string, PluginRecord>();

  constructor(
    private readonly ctx: CoreContext,
    private readonly backend: HostBackend,
  ) {}

  /** Loaded plugin names, in load order. */
  names(): readonly string[] {
    return [...this.#plugins.keys()];
  }

  async load(plugin: VendorPlugin): Promise<void> {
    if (
      !plugin ||
      typeof plugin !== 'object' ||
      !isEntryName(plugin.name) ||
      typeof plugin.init !== 'function' ||
      (plugin.exit !== undefined && typeof plugin.exit !== 'function')
    ) {
      throw new MdevError('EINVAL', 'loadPlugin: a plugin needs a name and an init function');
    }
    if (this.#plugins.has(plugin.name)) throw new MdevError('EEXIST', `loadPlugin: ${plugin.name} is already loaded`);
    const rec = new PluginRecord(plugin);
    rec.host = new Host(this.backend, rec);
    this.#plugins.set(rec.name, rec);
    try {
      await callPlugin(() => plugin.init(rec.host), { what: `plugin ${rec.name}: init`, timeoutMs: this.ctx.callTimeoutMs });
    } catch (e) {
      rec.state = 'gone'; // a late init can register nothing more
      await this.#releaseLeftovers(rec);
      this.#plugins.delete(rec.name);
      throw toMdevError(e);
    }
    rec.state = 'live';
  }

  async unload(name: string): Promise<void> {
    const rec = this.#plugins.get(name);
    if (!rec) throw new MdevError('ENOENT', `unloadPlugin: ${String(name)} is not loaded`);
    if (rec.unloading) return rec.unloading;
    if (rec.state === 'loading') throw new MdevError('EBUSY', `unloadPlugin: ${name} is still loading`);
    // An open VFIO device holds a reference on its vendor module (rmmod: "in use").
    for (const p of rec.parents) {
      for (const d of p.k.devices) {
        if (d.inUse) throw new MdevError('EBUSY', `unloadPlugin: ${name} is in use (${d.uuid} is open)`);
      }
    }
    rec.unloading = this.#exit(rec);
    return rec.unloading;
  }

  async #exit(rec: PluginRecord): Promise<void> {
    rec.state = 'unloading';
    const exit = rec.plugin.exit;
    if (exit) {
      try {
        await callPlugin(() => exit.call(rec.plugin, rec.host), { what: `plugin ${rec.name}: exit`, timeoutMs: this.ctx.callTimeoutMs });
      } catch (e) {
        this.ctx.log(errorMessage(e));
      }
    }
    await this.#releaseLeftovers(rec);
    // An unplugged parent of this plugin can no longer be plugged back.
    for (const [n, p] of this.ctx.unplugged) if (p.k.owner === rec) this.ctx.unplugged.delete(n);
    rec.state = 'gone';
    this.#plugins.delete(rec.name);
  }

  async #releaseLeftovers(rec: PluginRecord): Promise<void> {
    const ctx = this.ctx;
    // PCI functions first: their VFs go as the driver's remove takes them (and the parents on them).
    for (const d of [...rec.pciDevices].reverse()) {
      if (ctx.pciDevices.get(d.name) !== d) continue;
      try {
        await removePciDevice(ctx, d);
      } catch (e) {
        ctx.log(`plugin ${rec.name}: ${errorMessage(e)}`);
      }
    }
    for (const p of [...rec.parents].reverse()) {
      if (ctx.parents.get(p.name) !== p) continue;
      try {
        await unregisterParent(ctx, p);
      } catch (e) {
        ctx.log(`plugin ${rec.name}: ${errorMessage(e)}`);
      }
    }
    for (const d of [...rec.drivers].reverse()) {
      if (ctx.drivers.get(d.name) !== d) continue;
      try {
        await unregisterDriver(ctx, d.name);
      } catch (e) {
        ctx.log(`plugin ${rec.name}: ${errorMessage(e)}`);
      }
    }
  }
}
