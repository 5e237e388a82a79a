/**
 * mdpy — the kernel's sample mediated display (samples/vfio-mdev/mdpy.c): three
 * fixed-resolution framebuffer types under one virtual parent.
 *
 * What it shows:
 * - capacity model 1, the core counter: `maxInstances: 4` (the module's `count`
 *   parameter) is one budget shared by all three types; the fifth create fails
 *   with EUSERS from the core, whatever its type,
 * - pretty names that equal the type directory names ("mdpy-vga"), because the
 *   sample sets pretty_name = "mdpy-" + sysfs_name,
 * - a `description` file per type and a vendor/resolution file per device.
 *
 * The legacy profile has no core counter, so there the plugin keeps its own
 * count and, like mdpy before 6.1, shows `max_devices - count` and refuses the
 * fifth device with ENOMEM.
 */
import { MdevError, type MdevType, type ParentOps, type VendorPlugin } from 'mdevfs';

const MAX_DEVICES = 4;

interface MdpyType {
  width: number;
  height: number;
}

const types = [
  { id: 'vga', width: 640, height: 480 },
  { id: 'xga', width: 1024, height: 768 },
  { id: 'hd', width: 1920, height: 1080 },
].map(({ id, width, height }) => ({
  id,
  name: `mdpy-${id}`,
  description: `virtual display, ${width}x${height} framebuffer\n`,
  data: { width, height } satisfies MdpyType,
}));

const mode = (type: MdevType): MdpyType => type.spec.data as MdpyType;

const plugin: VendorPlugin = {
  name: 'mdpy',
  async init(mdev) {
    const legacy = mdev.profile === 'legacy';
    let count = 0; // mdpy_count, used by the legacy profile only

    const ops: ParentOps = {
      driver: 'mdpy',
      deviceApi: 'vfio-pci',
      types,
      maxInstances: MAX_DEVICES,
      ...(legacy ? { getAvailable: () => MAX_DEVICES - count } : {}),
      mdevAttrGroups: [
        {
          name: 'vendor',
          attrs: [
            {
              name: 'resolution',
              show: dev => `${mode(dev.type).width}x${mode(dev.type).height}\n`,
            },
          ],
        },
      ],
      create() {
        if (legacy) {
          if (count >= MAX_DEVICES) throw new MdevError('ENOMEM', `${MAX_DEVICES} mdpy devices exist`);
          count++;
        }
      },
      remove() {
        if (legacy) count--;
      },
    };

    await mdev.registerDevice({ path: 'devices/virtual/mdpy/mdpy', typePrefix: 'mdpy', subsystem: { class: 'mdpy' } }, ops);
  },
};

export default plugin;
