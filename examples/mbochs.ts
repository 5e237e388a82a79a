/**
 * mbochs — the kernel's sample mediated bochs display
 * (samples/vfio-mdev/mbochs.c): three video-memory sizes carved from one pool.
 *
 * What it shows: capacity model 2 with a weighted pool. The module parameter
 * (`count`, 256 MB by default) is the pool; types take 4, 16 and 64 MB, so
 * available_instances starts at 64, 16 and 4 and every creation lowers all
 * three by its own size. `create` refuses with ENOSPC when the pool is short
 * (mbochs_init_dev); before 6.1 the sample refused with ENOMEM, which the
 * legacy profile reproduces.
 */
import { MdevError, type MdevType, type ParentOps, type VendorPlugin } from 'mdevfs';

const MAX_MBYTES = 256;

const types = [
  { id: 'small', mbytes: 4 },
  { id: 'medium', mbytes: 16 },
  { id: 'large', mbytes: 64 },
].map(({ id, mbytes }) => ({
  id,
  name: `mbochs-${id}`,
  description: `virtual display, ${mbytes} MB video memory\n`,
  data: { mbytes },
}));

const mbytes = (type: MdevType): number => (type.spec.data as { mbytes: number }).mbytes;

const plugin: VendorPlugin = {
  name: 'mbochs',
  async init(mdev) {
    const legacy = mdev.profile === 'legacy';
    let availMbytes = MAX_MBYTES; // mbochs_avail_mbytes

    const ops: ParentOps = {
      driver: 'mbochs',
      deviceApi: 'vfio-pci',
      types,
      getAvailable: type => Math.floor(availMbytes / mbytes(type)),
      mdevAttrGroups: [
        {
          name: 'vendor',
          attrs: [{ name: 'memory', show: dev => `${mbytes(dev.type)} MB\n` }],
        },
      ],
      create(dev) {
        const need = mbytes(dev.type);
        if (availMbytes < need) {
          throw new MdevError(legacy ? 'ENOMEM' : 'ENOSPC', `${availMbytes} MB left, ${need} MB needed`);
        }
        availMbytes -= need;
      },
      remove(dev) {
        availMbytes += mbytes(dev.type); // mbochs_release_dev
      },
    };

    await mdev.registerDevice({ path: 'devices/virtual/mbochs/mbochs', typePrefix: 'mbochs', subsystem: { class: 'mbochs' } }, ops);
  },
};

export default plugin;
