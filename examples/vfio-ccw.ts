/**
 * vfio_ccw — s390 channel I/O pass-through (drivers/s390/cio/vfio_ccw_drv.c,
 * vfio_ccw_ops.c): an I/O subchannel bound to the `vfio_ccw` css driver offers
 * one mdev type, `vfio_ccw-io`, with exactly one instance.
 *
 * What it shows: the smallest capacity model 1 (`max_instances = 1`, so the
 * second create gets EUSERS from the core), a non-PCI parent on the `css` bus
 * with the subchannel's own identity files, and device_api `vfio-ccw`.
 * Before 6.1 the driver kept its own counter and refused with EPERM, which the
 * legacy profile reproduces.
 */
import { MdevError, type Attribute, type Parent, type ParentOps, type VendorPlugin } from 'mdevfs';

export interface Subchannel {
  /** The subchannel's bus id, e.g. '0.0.0313' (cssid.ssid.schno). */
  busid: string;
  /** Device number of the attached I/O device (shown in dev_busid). */
  devno: number;
  /** Installed channel paths (up to 8). */
  chpids: number[];
  /** Path installed / available / operational masks. */
  pim: number;
  pam: number;
  pom: number;
}

export const DEFAULT_SUBCHANNELS: Subchannel[] = [
  { busid: '0.0.0313', devno: 0x5000, chpids: [0x40, 0x41], pim: 0xc0, pam: 0xc0, pom: 0xff },
];

const hex2 = (n: number): string => n.toString(16).padStart(2, '0');

/** The files drivers/s390/cio/css.c gives an I/O subchannel (st = 0). */
function subchannelAttrs(sch: Subchannel): Attribute<Parent>[] {
  const ssid = sch.busid.split('.')[1]!;
  // chpids_show: one "%02x " per path slot (00 when absent), then "\n".
  const chpids = Array.from({ length: 8 }, (_, i) => `${hex2(sch.chpids[i] ?? 0)} `).join('') + '\n';
  return [
    { name: 'type', show: () => '0\n' },
    { name: 'modalias', show: () => 'css:t0\n' },
    { name: 'uevent', mode: 0o644, show: () => 'DRIVER=vfio_ccw\nST=0\nMODALIAS=css:t0\n', store: () => {} },
    { name: 'chpids', show: () => chpids },
    { name: 'pimpampom', show: () => `${hex2(sch.pim)} ${hex2(sch.pam)} ${hex2(sch.pom)}\n` },
    { name: 'dev_busid', show: () => `0.${ssid}.${sch.devno.toString(16).padStart(4, '0')}\n` },
  ];
}

export function createVfioCcwPlugin(subchannels: Subchannel[] = DEFAULT_SUBCHANNELS): VendorPlugin {
  return {
    name: 'vfio_ccw',
    async init(mdev) {
      const legacy = mdev.profile === 'legacy';
      for (const sch of subchannels) {
        let avail = 1; // private->avail before 6.1
        const ops: ParentOps = {
          driver: 'vfio_ccw_mdev',
          deviceApi: 'vfio-ccw',
          types: [{ id: 'io', name: 'I/O subchannel (Non-QDIO)' }],
          maxInstances: 1,
          ...(legacy ? { getAvailable: () => avail } : {}),
          create() {
            if (legacy) {
              if (avail < 1) throw new MdevError('EPERM', `${sch.busid} already has its mdev`);
              avail--;
            }
          },
          remove() {
            if (legacy) avail++;
          },
        };
        await mdev.registerDevice(
          {
            path: `devices/css0/${sch.busid}`,
            typePrefix: 'vfio_ccw',
            subsystem: { bus: 'css' },
            driver: 'vfio_ccw',
            attrs: [{ attrs: subchannelAttrs(sch) }],
          },
          ops,
        );
      }
    },
  };
}

export default createVfioCcwPlugin();
