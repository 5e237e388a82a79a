/**
 * The registration API handed to plugins (the kernel's exported symbols), and
 * the record of what each loaded plugin registered, so unload can clean up.
 */
import type {
  MdevDevice,
  MdevDriver,
  MdevHost,
  Parent,
  ParentDeviceSpec,
  ParentOps,
  PciDevice,
  PciDeviceSpec,
  Profile,
  VendorPlugin,
} from './api.js';
import type { DriverEntry, Owner, ParentImpl } from './objects.js';
import { MdevError } from './errno.js';

export class PluginRecord implements Owner {
  readonly name: string;
  readonly plugin: VendorPlugin;
  readonly parents = new Set<ParentImpl>();
  readonly drivers = new Set<DriverEntry>();
  readonly pciDevices = new Set<PciDevice>();
  state: 'loading' | 'live' | 'unloading' | 'gone' = 'loading';
  unloading: Promise<void> | undefined;
  host!: Host;

  constructor(plugin: VendorPlugin) {
    this.name = plugin.name;
    this.plugin = plugin;
  }
}

/** What the core provides behind every host (one per plugin, plus `core.host`). */
export interface HostBackend {
  readonly profile: Profile;
  registerDriver(drv: MdevDriver, owner: Owner | undefined): Promise<void>;
  unregisterDriver(name: string): Promise<void>;
  registerDevice(device: ParentDeviceSpec, ops: ParentOps, owner: Owner | undefined): Promise<Parent>;
  unregisterDevice(parent: Parent | string): Promise<void>;
  addPciDevice(device: PciDeviceSpec, owner: Owner | undefined): Promise<PciDevice>;
  removePciDevice(device: PciDevice | string): Promise<void>;
  pinPages(dev: MdevDevice, userPfns: readonly number[], prot: number): Promise<number[]>;
  unpinPages(dev: MdevDevice, userPfns: readonly number[]): Promise<number>;
  log(message: string): void;
}

export class Host implements MdevHost {
  readonly #backend: HostBackend;
  readonly #owner: PluginRecord | undefined;

  constructor(backend: HostBackend, owner?: PluginRecord) {
    this.#backend = backend;
    this.#owner = owner;
  }

  get profile(): Profile {
    return this.#backend.profile;
  }

  /** A plugin that has been unloaded (or whose init failed) may not register anything. */
  #live(): void {
    if (this.#owner?.state === 'gone') throw new MdevError('ENODEV', `plugin ${this.#owner.name} is unloaded`);
  }

  async registerDriver<DD = unknown>(drv: MdevDriver<DD>): Promise<void> {
    this.#live();
    return this.#backend.registerDriver(drv, this.#owner);
  }

  async unregisterDriver(name: string): Promise<void> {
    return this.#backend.unregisterDriver(name);
  }

  // The core keeps drvdata untyped; the plugin's DD/PD only type its own callbacks.
  async registerDevice<DD = unknown, PD = unknown>(device: ParentDeviceSpec, ops: ParentOps<DD, PD>): Promise<Parent<PD>> {
    this.#live();
    return this.#backend.registerDevice(device, ops, this.#owner) as Promise<Parent<PD>>;
  }

  async unregisterDevice(parent: Parent | string): Promise<void> {
    return this.#backend.unregisterDevice(parent);
  }

  async addPciDevice<D = unknown>(device: PciDeviceSpec): Promise<PciDevice<D>> {
    this.#live();
    return this.#backend.addPciDevice(device, this.#owner) as Promise<PciDevice<D>>;
  }

  async removePciDevice(device: PciDevice | string): Promise<void> {
    return this.#backend.removePciDevice(device);
  }

  pinPages(dev: MdevDevice, userPfns: readonly number[], prot: number): Promise<number[]> {
    return this.#backend.pinPages(dev, userPfns, prot);
  }

  unpinPages(dev: MdevDevice, userPfns: readonly number[]): Promise<number> {
    return this.#backend.unpinPages(dev, userPfns);
  }

  log(message: string): void {
    this.#backend.log(this.#owner ? `${this.#owner.name}: ${message}` : String(message));
  }
}
