/**
 * vfio_ap — s390 Adjunct Processor (crypto card) pass-through
 * (drivers/s390/crypto/vfio_ap_drv.c, vfio_ap_ops.c).
 *
 * What it shows:
 * - a parent on a bus of its own: /sys/devices/vfio_ap/matrix, bus `matrix`,
 *   bound to driver `vfio_ap` (hence the type `vfio_ap-passthrough`),
 * - capacity model 1 with a huge budget: max_instances 65536
 *   (MAX_ZDEV_ENTRIES_EXT); the core answers EUSERS beyond it,
 * - writable per-device attributes that configure the device after creation:
 *   assign_/unassign_ adapter, domain and control_domain (0200) take a number
 *   parsed like kstrtoul(buf, 0) (decimal, 0x hex or 0 octal), and matrix /
 *   control_domains (0444) show the result as "%02x.%04x\n" / "%04x\n" lines.
 *
 * Errors, as vfio_ap_ops.c reports them:
 *   EINVAL / ERANGE  not a number / does not fit an unsigned long (kstrtoul)
 *   ENODEV           id above the host's maximum (QCI Na / Nd; 255 with APXA)
 *   EADDRNOTAVAIL    a resulting queue (APQN = adapter x domain) belongs to the
 *                    host's default zcrypt drivers (/sys/bus/ap/apmask, aqmask)
 *   EADDRINUSE       a resulting queue is already assigned to another mdev
 * EADDRNOTAVAIL (99) and EADDRINUSE (98) are thrown as Linux errno numbers.
 *
 * The host modelled by default (DEFAULT_AP_HOST): APXA, so ids up to 255;
 * adapters 5 and 6 and domains 0x0004 and 0x00ab have been taken from the
 * default drivers (their apmask/aqmask bits cleared) for pass-through, as in
 * mdevctl's vfio_ap test fixture (adapters 5,6; domains 0xab,4). So queue
 * 03.0010 is zcrypt's, while 03.00ab and 05.0010 may be assigned.
 * guest_matrix (today's kernel only) shows the matrix the guest would get
 * (vfio_ap_mdev_filter_matrix drops an adapter any of whose assigned queues is
 * missing or not bound to vfio_ap). This model's host has every adapter and
 * domain up to the maximum, with every assignable queue bound to vfio_ap, so
 * it equals `matrix`; a host with gaps would show fewer.
 * ap_config (today's kernel only, for mdevctl's automation) shows the three
 * masks as 256-bit hex strings, "0x<apm>,0x<aqm>,0x<adm>\n", id 0 the leftmost
 * bit; a write of the same form replaces all three at once, with the same
 * checks as the assign_* stores (EADDRNOTAVAIL/EADDRINUSE, then ENODEV), and
 * on failure leaves the matrix as it was. Not emulated: the EBUSY/EAGAIN of
 * assignments racing a starting guest.
 */
import { kstrtoul, MdevError, type MdevDevice, type ParentOps, type VendorPlugin } from 'mdevfs';

/** The package's kstrtoul (lib/kstrtox.c), which the assign_* stores parse with. */
export { kstrtoul };

const MAX_ZDEV_ENTRIES_EXT = 256 * 256;
const EADDRINUSE = 98;
const EADDRNOTAVAIL = 99;

/** An error carrying a Linux errno number, for errnos mdevfs has no name for. */
const errnoError = (errno: number, message: string): Error => Object.assign(new Error(message), { errno });

export interface ApHostConfig {
  /** Highest adapter id (QCI Na with APXA; 63 without). */
  maxApid: number;
  /** Highest domain id (QCI Nd with APXA; 15 without); also bounds control domains. */
  maxApqi: number;
  /** Adapters NOT owned by the default zcrypt drivers (the cleared bits of /sys/bus/ap/apmask). */
  passthroughAdapters: number[];
  /** Domains NOT owned by the default zcrypt drivers (the cleared bits of /sys/bus/ap/aqmask). */
  passthroughDomains: number[];
}

export const DEFAULT_AP_HOST: ApHostConfig = {
  maxApid: 255,
  maxApqi: 255,
  passthroughAdapters: [0x05, 0x06],
  passthroughDomains: [0x0004, 0x00ab],
};

/** The AP matrix of one mdev (its drvdata): adapters (APM), usage domains (AQM), control domains (ADM). */
interface Matrix {
  apm: Set<number>;
  aqm: Set<number>;
  adm: Set<number>;
}
type ApMdev = MdevDevice<Matrix>;
const matrix = (dev: ApMdev): Matrix => dev.drvdata!;
const sorted = (s: Set<number>): number[] => [...s].sort((a, b) => a - b);
const hex = (n: number, w: number): string => n.toString(16).padStart(w, '0');
const intersects = (a: Set<number>, b: Set<number>): boolean => [...a].some(x => b.has(x));

/** AP_DEVICES = AP_DOMAINS = 256: the width of each ap_config mask. */
const AP_MASK_BITS = 256;

/** write_ap_bitmap: "0x" and 64 hex digits, id 0 the leftmost bit (set_bit_inv numbering). */
function apMaskShow(ids: Set<number>): string {
  const nibbles = new Array<number>(AP_MASK_BITS / 4).fill(0);
  for (const id of ids) nibbles[id >> 2]! |= 8 >> (id & 3);
  return '0x' + nibbles.map(n => n.toString(16)).join('');
}

/**
 * ap_hex2bitmap (drivers/s390/crypto/ap_bus.c): an optional "0x" or "x",
 * then at most 64 hex digits read left to right, then an optional newline;
 * anything else is EINVAL. An empty mask is all zeros.
 */
function apMaskParse(token: string): Set<number> {
  let s = token.startsWith('0x') ? token.slice(2) : token;
  if (s.startsWith('x')) s = s.slice(1);
  const ids = new Set<number>();
  let i = 0;
  let k = 0;
  for (; k < s.length && /[0-9a-fA-F]/.test(s[k]!) && i < AP_MASK_BITS; k++, i += 4) {
    const b = parseInt(s[k]!, 16);
    for (let n = 0; n < 4; n++) if (b & (8 >> n)) ids.add(i + n);
  }
  if (s[k] === '\n') k++;
  if (k < s.length) throw new MdevError('EINVAL', `bad AP mask ${JSON.stringify(token)}`);
  return ids;
}

/** ap_config_store's parse_bitmap three times: tokens split at ',' or '\n' (strsep), a missing one EINVAL. */
function apConfigParse(text: string): Matrix {
  const tokens = text.split(/[,\n]/);
  if (tokens.length < 3) throw new MdevError('EINVAL', 'ap_config needs three masks: apm,aqm,adm');
  return { apm: apMaskParse(tokens[0]!), aqm: apMaskParse(tokens[1]!), adm: apMaskParse(tokens[2]!) };
}

/** vfio_ap_mdev_matrix_show: the cross product "%02x.%04x", or whichever half is set. */
function matrixShow(m: Matrix): string {
  const apids = sorted(m.apm);
  const apqis = sorted(m.aqm);
  if (apids.length && apqis.length) return apids.flatMap(a => apqis.map(q => `${hex(a, 2)}.${hex(q, 4)}\n`)).join('');
  if (apids.length) return apids.map(a => `${hex(a, 2)}.\n`).join('');
  return apqis.map(q => `.${hex(q, 4)}\n`).join('');
}

export function createVfioApPlugin(host: ApHostConfig = DEFAULT_AP_HOST): VendorPlugin {
  return {
    name: 'vfio_ap',
    async init(mdev) {
      const legacy = mdev.profile === 'legacy';
      const mdevs = new Set<ApMdev>(); // matrix_dev->mdev_list
      const ptApm = new Set(host.passthroughAdapters);
      const ptAqm = new Set(host.passthroughDomains);

      /** vfio_ap_mdev_validate_masks. */
      function validate(dev: ApMdev): void {
        const m = matrix(dev);
        // ap_apqn_in_matrix_owned_by_def_drv: a queue is the default drivers' when
        // both its adapter and its domain are still set in apmask / aqmask.
        for (const apid of m.apm) {
          for (const apqi of m.aqm) {
            if (!ptApm.has(apid) && !ptAqm.has(apqi)) {
              throw errnoError(EADDRNOTAVAIL, `queue ${hex(apid, 2)}.${hex(apqi, 4)} owned by the default driver`);
            }
          }
        }
        // vfio_ap_mdev_verify_no_sharing
        for (const other of mdevs) {
          if (other === dev) continue;
          const o = matrix(other);
          if (intersects(m.apm, o.apm) && intersects(m.aqm, o.aqm)) {
            throw errnoError(EADDRINUSE, `a queue is already assigned to ${other.uuid}`);
          }
        }
      }

      /** Parse and range-check an id the way every *_store does. */
      const parseId = (value: string, max: number): number => {
        const id = kstrtoul(value, 0); // lib/kstrtox.c kstrtoul(buf, 0)
        if (id > BigInt(max)) throw new MdevError('ENODEV', `${id} exceeds the maximum ${max}`);
        return Number(id);
      };

      /** assign_adapter / assign_domain: set the bit, validate, undo on failure. */
      const assign = (mask: 'apm' | 'aqm', max: number) => (dev: ApMdev, value: string) => {
        const id = parseId(value, max);
        const set = matrix(dev)[mask];
        if (set.has(id)) return;
        set.add(id);
        try {
          validate(dev);
        } catch (e) {
          set.delete(id);
          throw e;
        }
      };
      const unassign = (mask: keyof Matrix, max: number) => (dev: ApMdev, value: string) => {
        matrix(dev)[mask].delete(parseId(value, max));
      };

      /** ap_config_store: all three masks at once; validate_ap_matrix, and the old matrix back on failure. */
      const setConfig = (dev: ApMdev, value: string): void => {
        const next = apConfigParse(value);
        const old = matrix(dev);
        dev.drvdata = next;
        try {
          validate(dev); // vfio_ap_mdev_validate_masks
          // ap_matrix_overflow_check
          for (const [ids, max] of [
            [next.apm, host.maxApid],
            [next.aqm, host.maxApqi],
            [next.adm, host.maxApqi],
          ] as const) {
            for (const id of ids) if (id > max) throw new MdevError('ENODEV', `${id} exceeds the maximum ${max}`);
          }
        } catch (e) {
          dev.drvdata = old;
          throw e;
        }
      };

      const ops: ParentOps<Matrix> = {
        driver: 'vfio_ap_mdev',
        deviceApi: 'vfio-ap',
        types: [{ id: 'passthrough', name: 'VFIO AP Passthrough Device' }],
        maxInstances: MAX_ZDEV_ENTRIES_EXT,
        // Before 6.1 the driver counted itself and refused with EPERM.
        ...(legacy ? { getAvailable: () => MAX_ZDEV_ENTRIES_EXT - mdevs.size } : {}),
        create(dev) {
          if (legacy && mdevs.size >= MAX_ZDEV_ENTRIES_EXT) throw new MdevError('EPERM', 'no instances left');
          dev.drvdata = { apm: new Set(), aqm: new Set(), adm: new Set() };
          mdevs.add(dev);
        },
        remove(dev) {
          mdevs.delete(dev);
        },
        mdevAttrGroups: [
          {
            attrs: [
              { name: 'assign_adapter', store: assign('apm', host.maxApid) },
              { name: 'unassign_adapter', store: unassign('apm', host.maxApid) },
              { name: 'assign_domain', store: assign('aqm', host.maxApqi) },
              { name: 'unassign_domain', store: unassign('aqm', host.maxApqi) },
              // Control domains are not checked against ownership or sharing.
              {
                name: 'assign_control_domain',
                store: (dev, v) => {
                  matrix(dev).adm.add(parseId(v, host.maxApqi));
                },
              },
              { name: 'unassign_control_domain', store: unassign('adm', host.maxApqi) },
              {
                name: 'control_domains',
                show: dev =>
                  sorted(matrix(dev).adm)
                    .map(id => `${hex(id, 4)}\n`)
                    .join(''),
              },
              { name: 'matrix', show: dev => matrixShow(matrix(dev)) },
              // Today's guest matrix (shadow_apcb after vfio_ap_mdev_filter_matrix):
              // equal to the matrix on this model's host (see the header). 4.10 had
              // no such file.
              ...(legacy ? [] : [{ name: 'guest_matrix', show: (dev: ApMdev) => matrixShow(matrix(dev)) }]),
              ...(legacy
                ? []
                : [
                    {
                      name: 'ap_config',
                      mode: 0o644,
                      show: (dev: ApMdev) => {
                        const m = matrix(dev);
                        return `${apMaskShow(m.apm)},${apMaskShow(m.aqm)},${apMaskShow(m.adm)}\n`;
                      },
                      store: setConfig,
                    },
                  ]),
            ],
          },
        ],
      };

      await mdev.registerDevice(
        {
          path: 'devices/vfio_ap/matrix',
          typePrefix: 'vfio_ap',
          subsystem: { bus: 'matrix' },
          driver: 'vfio_ap', // the matrix bus has no uevent variables of its own: uevent is "DRIVER=vfio_ap\n"
        },
        ops,
      );
    },
  };
}

export default createVfioApPlugin();
