/**
 * The benchmark's vendor driver: one driverless class-device parent
 * (/sys/devices/virtual/mbench/mbench) with one type, `mbench-1`, whose core
 * counter allows 100,000 instances, and create/remove that do nothing. It
 * measures mdevfs itself (core + sysfs presenter + FUSE adapter), not a vendor.
 */
import type { VendorPlugin } from '../../src/core/api.js';

export const BENCH_PARENT_PATH = 'devices/virtual/mbench/mbench';
export const BENCH_TYPE = 'mbench-1';
export const BENCH_MAX_INSTANCES = 100_000;

const plugin: VendorPlugin = {
  name: 'mbench',
  async init(mdev) {
    await mdev.registerDevice(
      { path: BENCH_PARENT_PATH, typePrefix: 'mbench', subsystem: { class: 'mbench' } },
      {
        driver: 'mbench',
        deviceApi: 'vfio-pci',
        maxInstances: BENCH_MAX_INSTANCES,
        types: [{ id: '1', name: 'Benchmark type' }],
        create() {},
        remove() {},
      },
    );
  },
};

export default plugin;
