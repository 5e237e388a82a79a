/**
 * The VFIO user side, programmatically (what QEMU does with /dev/vfio/<N>):
 * open a device, forward read/write/ioctl/mmap to the parent's ops, close.
 *
 * The parent's `open` runs on the first open and `close` on the last
 * (today's open_device/close_device pairing) in both profiles. A missing
 * read/write/ioctl/mmap op fails with EINVAL, as vfio_mdev.c did for each.
 */
import type { Awaitable, MmapRequest } from './api.js';
import type { CoreDevice, Type1Container, VfioDeviceHandle, VfioUser } from './model.js';
import type { DeviceImpl } from './objects.js';
import { MdevError, errnoName } from './errno.js';
import { Type1ContainerImpl, type Type1Backend } from './type1.js';

export interface VfioBackend extends Type1Backend {
  findDevice(uuid: string): DeviceImpl | undefined;
  call<T>(fn: () => Awaitable<T>, what: string, onLate?: (value: T) => void): Promise<T>;
  /** openCount changed: announce the device (model.ts DeviceStep). */
  changed(dev: DeviceImpl, step: 'opened' | 'closed'): void;
  /** An injected fault for the device's first open (faults.ts), in the vendor's place. */
  fault?(dev: DeviceImpl): Promise<void> | undefined;
  log(message: string): void;
}

/** Only an active, bound device has a group to open it through. */
function openable(dev: DeviceImpl): boolean {
  return dev.k.state === 'active' && dev.k.boundDriver !== undefined && dev.k.blockOpens === 0;
}

function nonNegInt(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}

function asBuffer(v: unknown, what: string): Buffer {
  if (Buffer.isBuffer(v)) return v;
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  throw new MdevError('EIO', `${what} returned ${typeof v}, not a Buffer`);
}

class Handle implements VfioDeviceHandle {
  readonly device: CoreDevice;
  readonly #dev: DeviceImpl;
  readonly #user: VfioUserImpl;
  #closing: Promise<void> | undefined;

  constructor(dev: DeviceImpl, user: VfioUserImpl) {
    this.#dev = dev;
    this.device = dev;
    this.#user = user;
  }

  #check(): DeviceImpl {
    if (this.#closing) throw new MdevError('EBADF', 'VFIO device handle is closed');
    return this.#dev;
  }

  async read(count: number, offset: number): Promise<Buffer> {
    const dev = this.#check();
    if (!nonNegInt(count) || !nonNegInt(offset)) throw new MdevError('EINVAL', 'read: bad count or offset');
    const op = dev.parent.ops.read;
    if (!op) throw new MdevError('EINVAL', `${dev.uuid}: parent has no read op`);
    const what = `${dev.parent.name}: read(${dev.uuid})`;
    const buf = asBuffer(await this.#user.backend.call(() => op.call(dev.parent.ops, dev, count, offset), what), what);
    if (buf.length > count) throw new MdevError('EIO', `${what} returned ${buf.length} bytes for a ${count}-byte read`);
    return buf;
  }

  async write(data: Buffer, offset: number): Promise<number> {
    const dev = this.#check();
    if (!(data instanceof Uint8Array) || !nonNegInt(offset)) throw new MdevError('EINVAL', 'write: bad data or offset');
    const op = dev.parent.ops.write;
    if (!op) throw new MdevError('EINVAL', `${dev.uuid}: parent has no write op`);
    const what = `${dev.parent.name}: write(${dev.uuid})`;
    const n = await this.#user.backend.call(
      () => op.call(dev.parent.ops, dev, Buffer.from(data.buffer, data.byteOffset, data.byteLength), offset),
      what,
    );
    if (!nonNegInt(n) || n > data.length) throw new MdevError('EIO', `${what} returned ${String(n)}`);
    return n;
  }

  async ioctl(cmd: number, arg: Buffer): Promise<number> {
    const dev = this.#check();
    const op = dev.parent.ops.ioctl;
    if (!op) throw new MdevError('EINVAL', `${dev.uuid}: parent has no ioctl op`);
    const what = `${dev.parent.name}: ioctl(${dev.uuid}, 0x${(cmd >>> 0).toString(16)})`;
    const r = await this.#user.backend.call(() => op.call(dev.parent.ops, dev, cmd, arg), what);
    if (typeof r !== 'number' || !Number.isSafeInteger(r)) throw new MdevError('EIO', `${what} returned ${String(r)}`);
    if (r < 0) throw new MdevError(errnoName(r) ?? 'EIO', `${what} returned ${r}`); // a kernel-style -errno
    return r;
  }

  async mmap(req: MmapRequest): Promise<Buffer> {
    const dev = this.#check();
    if (!req || !nonNegInt(req.offset) || !nonNegInt(req.length) || req.length === 0) throw new MdevError('EINVAL', 'mmap: bad request');
    const op = dev.parent.ops.mmap;
    if (!op) throw new MdevError('EINVAL', `${dev.uuid}: parent has no mmap op`);
    const what = `${dev.parent.name}: mmap(${dev.uuid})`;
    return asBuffer(await this.#user.backend.call(() => op.call(dev.parent.ops, dev, req), what), what);
  }

  close(): Promise<void> {
    this.#closing ??= this.#user.release(this, this.#dev);
    return this.#closing;
  }
}

export class VfioUserImpl implements VfioUser {
  readonly backend: VfioBackend;
  readonly #handles = new Set<Handle>();

  constructor(backend: VfioBackend) {
    this.backend = backend;
  }

  async open(uuid: string, opts: { container?: Type1Container } = {}): Promise<VfioDeviceHandle> {
    const dev = typeof uuid === 'string' ? this.backend.findDevice(uuid) : undefined;
    if (!dev || !openable(dev)) throw new MdevError('ENODEV', `open: no active bound mediated device ${String(uuid)}`);
    const container = opts.container;
    if (container !== undefined && !(container instanceof Type1ContainerImpl && container.isOwnedBy(this.backend))) {
      throw new MdevError('EINVAL', 'open: not a container of this core');
    }
    dev.k.pending++; // from here a remove waits for this open to finish
    try {
      return await dev.openLock.run(async () => {
        if (!openable(dev)) throw new MdevError('ENODEV', `open: ${dev.uuid} is going away`);
        if (container && dev.k.container && dev.k.container !== container) {
          throw new MdevError('EBUSY', `open: ${dev.uuid}'s group is attached to another container`);
        }
        const op = dev.parent.ops.open;
        if (dev.k.openCount === 0) await this.backend.fault?.(dev);
        if (dev.k.openCount === 0 && op) {
          const closeOp = dev.parent.ops.close;
          await this.backend.call(
            () => op.call(dev.parent.ops, dev),
            `${dev.parent.name}: open(${dev.uuid})`,
            () => {
              // The open timed out but then succeeded: give the plugin its close.
              if (closeOp)
                void this.backend.call(() => closeOp.call(dev.parent.ops, dev), `${dev.parent.name}: close(${dev.uuid})`).catch(() => {});
            },
          );
        }
        dev.k.openCount++;
        if (container) dev.k.container = container;
        const h = new Handle(dev, this);
        this.#handles.add(h);
        this.backend.changed(dev, 'opened');
        return h;
      });
    } finally {
      dev.k.pending--;
      dev.notifyIfIdle();
    }
  }

  createContainer(opts: { pinning?: boolean; lockedLimitPages?: number } = {}): Type1Container {
    if (opts.lockedLimitPages !== undefined && !(opts.lockedLimitPages >= 0)) {
      throw new MdevError('EINVAL', 'createContainer: lockedLimitPages must be >= 0');
    }
    return new Type1ContainerImpl(this.backend, opts);
  }

  /** How many handles are open on any device. */
  get openHandles(): number {
    return this.#handles.size;
  }

  /** Close every open handle (daemon shutdown: the users are going away too). */
  async closeAll(): Promise<void> {
    await Promise.all([...this.#handles].map(h => h.close()));
  }

  /** @internal the close path of a handle. */
  async release(h: Handle, dev: DeviceImpl): Promise<void> {
    dev.k.pending++;
    try {
      await dev.openLock.run(async () => {
        this.#handles.delete(h);
        dev.k.openCount--;
        if (dev.k.openCount === 0) {
          const op = dev.parent.ops.close;
          if (op) {
            try {
              await this.backend.call(() => op.call(dev.parent.ops, dev), `${dev.parent.name}: close(${dev.uuid})`);
            } catch (e) {
              this.backend.log(`${(e as Error).message} (ignored: close cannot fail)`);
            }
          }
          const c = dev.k.container;
          dev.k.container = undefined;
          const left = c ? c.releaseDevice(dev) : 0;
          if (left > 0) this.backend.log(`${dev.uuid}: released ${left} page pin(s) left at close`);
        }
        this.backend.changed(dev, 'closed');
      });
    } finally {
      dev.k.pending--;
      dev.notifyIfIdle();
    }
  }
}
