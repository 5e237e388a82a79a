/**
 * mtty — the kernel's sample mediated device (samples/vfio-mdev/mtty.c): a
 * virtual PCI card carrying one or two 16550-style serial ports that loop back
 * whatever is written to them.
 *
 * What it shows:
 * - a driverless class device as parent (/sys/devices/virtual/mtty/mtty),
 * - two types sharing one pool of 24 ports (capacity model 2, `getAvailable`):
 *   available_instances = free ports / ports per device, and `create` fails with
 *   ENOSPC when fewer ports remain (mtty_init_dev),
 * - no `description` file (mtty has no show_description),
 * - vendor attributes on every mdev (vendor/sample_mdev_dev) and, in the legacy
 *   profile, on the parent (mtty_dev/sample_mtty_dev, 4.10's dev_attr_groups),
 * - the VFIO device: PCI config space in region 7, the UARTs in BAR0/BAR1, and
 *   the GET_INFO / GET_REGION_INFO / GET_IRQ_INFO ioctls, as the sample
 *   answers them.
 *
 * Deliberately reproduced quirks of the sample: BAR1 answers even on a
 * single-port device (its second port exists, only region info hides it); the
 * loopback FIFO cannot tell 16 queued bytes from none (head == tail);
 * GET_IRQ_INFO fails with EINVAL until GET_INFO has been called (it checks the
 * index against the num_irqs GET_INFO saved). Not emulated: interrupt delivery
 * (SET_IRQS needs eventfds; it answers ENOTTY here) and migration.
 */
import { MdevError, type MdevType, type ParentOps, type VendorPlugin } from 'mdevfs';
import * as vfio from './vfio.js';

const MAX_MTTYS = 24;
const MTTY_CONFIG_SPACE_SIZE = 0xff;
const MTTY_IO_BAR_SIZE = 0x8;
const MAX_FIFO_SIZE = 16;

// include/uapi/linux/serial_reg.h
const UART_RX = 0,
  UART_TX = 0,
  UART_IER = 1,
  UART_IIR = 2,
  UART_FCR = 2,
  UART_LCR = 3;
const UART_MCR = 4,
  UART_LSR = 5,
  UART_MSR = 6,
  UART_SCR = 7;
const UART_IER_RDI = 0x01,
  UART_IER_THRI = 0x02,
  UART_IER_RLSI = 0x04,
  UART_IER_MSI = 0x08;
const UART_IIR_NO_INT = 0x01,
  UART_IIR_MSI = 0x00,
  UART_IIR_THRI = 0x02,
  UART_IIR_RDI = 0x04,
  UART_IIR_RLSI = 0x06;
const UART_FCR_ENABLE_FIFO = 0x01,
  UART_FCR_CLEAR_RCVR = 0x02,
  UART_FCR_CLEAR_XMIT = 0x04;
const UART_LCR_DLAB = 0x80;
const UART_MCR_DTR = 0x01,
  UART_MCR_RTS = 0x02,
  UART_MCR_AFE = 0x20;
const UART_LSR_DR = 0x01,
  UART_LSR_OE = 0x02,
  UART_LSR_THRE = 0x20,
  UART_LSR_TEMT = 0x40;
const UART_MSR_DCTS = 0x01,
  UART_MSR_DDSR = 0x02,
  UART_MSR_CTS = 0x10,
  UART_MSR_DSR = 0x20,
  UART_MSR_DCD = 0x80;

/** struct serial_port: eight registers and the loopback FIFO. */
class SerialPort {
  uartReg = new Uint8Array(8);
  fifo = new Uint8Array(MAX_FIFO_SIZE);
  head = 0;
  tail = 0;
  count = 0;
  dlab = false;
  overrun = false;
  divisor = 0;
  fcr = 0;
  maxFifoSize = MAX_FIFO_SIZE;
  intrTriggerLevel = 0;

  get empty(): boolean {
    return this.head === this.tail;
  }
}

/** struct mdev_state, reduced to what the emulation needs. */
interface MttyDevice {
  nrPorts: number;
  /** The sample kzalloc()s 0xff bytes; one more keeps 4-byte reads at 0xfc in bounds. */
  vconfig: Buffer;
  barMask: [number, number];
  s: [SerialPort, SerialPort];
  /** dev_info.num_irqs as saved by the last VFIO_DEVICE_GET_INFO (0 before). */
  numIrqs: number;
}

/** mtty_create_config_space. */
function createConfigSpace(st: MttyDevice): void {
  const c = st.vconfig;
  c.writeUInt32LE(0x32534348, 0x0); // vendor 0x4348, device 0x3253
  c.writeUInt16LE(0x0001, 0x4); // command: I/O+, Mem-, BusMaster-
  c.writeUInt16LE(0x0200, 0x6); // status
  c[0x8] = 0x10; // revision
  c[0x9] = 0x02; // prog-if: 16550-compatible
  c[0xa] = 0x00; // subclass
  c[0xb] = 0x07; // class: simple communication controller
  c.writeUInt32LE(0x000001, 0x10); // BAR0: I/O space
  st.barMask[0] = (~MTTY_IO_BAR_SIZE + 1) >>> 0;
  if (st.nrPorts === 2) {
    c.writeUInt32LE(0x000001, 0x14); // BAR1: I/O space
    st.barMask[1] = (~MTTY_IO_BAR_SIZE + 1) >>> 0;
  }
  c.writeUInt32LE(0x32534348, 0x2c); // subsystem vendor/device
  c[0x34] = 0x00; // capabilities pointer
  c[0x3d] = 0x01; // interrupt pin INTA#
  c[0x40] = 0x23;
  c[0x43] = 0x80;
  c[0x44] = 0x23;
  c[0x48] = 0x23;
  c[0x4c] = 0x23;
  c.write('PCI Serial/UART', 0x60, 'latin1');
}

/** handle_pci_cfg_write: only BARs and the interrupt line are writable. */
function pciCfgWrite(st: MttyDevice, offset: number, buf: Buffer): void {
  switch (offset) {
    case 0x3c: // interrupt line
      st.vconfig[0x3c] = buf[0]!;
      break;
    case 0x10: // BAR0
    case 0x14: {
      // BAR1
      const bar = offset === 0x10 ? 0 : 1;
      if (st.nrPorts === 1 && bar === 1) {
        st.vconfig.writeUInt32LE(0, offset);
        break;
      }
      let addr = Buffer.concat([buf, Buffer.alloc(4)]).readUInt32LE(0);
      if (addr === 0xffffffff) addr = (addr & st.barMask[bar]) >>> 0; // sizing
      addr = (addr | (st.vconfig[offset]! & 0x3)) >>> 0;
      st.vconfig.writeUInt32LE(addr, offset);
      break;
    }
    case 0x18:
    case 0x1c:
    case 0x20: // BAR2..BAR4 do not exist
      st.vconfig.writeUInt32LE(0, offset);
      break;
    default: // command, status, interrupt pin and everything else: ignored
      break;
  }
}

/** handle_bar_write: the UART as the guest's driver programs it. */
function barWrite(p: SerialPort, offset: number, data: number): void {
  switch (offset) {
    case UART_TX:
      if (p.dlab) {
        p.divisor |= data;
        break;
      }
      if (p.count < p.maxFifoSize) {
        // loop back: TX goes straight to the RX FIFO
        p.fifo[p.head] = data;
        p.count++;
        p.head = (p.head + 1) & (MAX_FIFO_SIZE - 1);
        p.overrun = false;
      } else {
        p.overrun = true;
      }
      break;
    case UART_IER:
      if (p.dlab) p.divisor |= data << 8;
      else p.uartReg[UART_IER] = data;
      break;
    case UART_FCR:
      p.fcr = data;
      if (data & (UART_FCR_CLEAR_RCVR | UART_FCR_CLEAR_XMIT)) {
        p.count = 0;
        p.head = 0;
        p.tail = 0;
      }
      // The sample computes a trigger level from the FCR and then forces 1.
      p.intrTriggerLevel = 1;
      p.maxFifoSize = data & UART_FCR_ENABLE_FIFO ? MAX_FIFO_SIZE : 1;
      break;
    case UART_LCR:
      if (data & UART_LCR_DLAB) {
        p.dlab = true;
        p.divisor = 0;
      } else p.dlab = false;
      p.uartReg[UART_LCR] = data;
      break;
    case UART_MCR:
    case UART_SCR:
      p.uartReg[offset] = data;
      break;
    default: // LSR, MSR: read-only
      break;
  }
}

/** handle_bar_read. */
function barRead(p: SerialPort, offset: number): number {
  switch (offset) {
    case UART_RX: {
      if (p.dlab) return p.divisor & 0xff;
      let data = 0;
      if (!p.empty) {
        data = p.fifo[p.tail]!;
        p.count--;
        p.tail = (p.tail + 1) & (MAX_FIFO_SIZE - 1);
      }
      return data;
    }
    case UART_IER:
      return p.dlab ? (p.divisor >> 8) & 0xff : p.uartReg[UART_IER]! & 0x0f;
    case UART_IIR: {
      const ier = p.uartReg[UART_IER]!;
      let iir = 0;
      if (ier & UART_IER_RLSI && p.overrun) iir |= UART_IIR_RLSI;
      if (ier & UART_IER_RDI && p.count >= p.intrTriggerLevel) iir |= UART_IIR_RDI;
      if (ier & UART_IER_THRI && p.empty) iir |= UART_IIR_THRI;
      if (ier & UART_IER_MSI && p.uartReg[UART_MCR]! & (UART_MCR_RTS | UART_MCR_DTR)) iir |= UART_IIR_MSI;
      if (iir === 0) iir = UART_IIR_NO_INT;
      return iir | 0xc0; // 16550: FIFOs enabled
    }
    case UART_LCR:
    case UART_MCR:
    case UART_SCR:
      return p.uartReg[offset]!;
    case UART_LSR: {
      let lsr = 0;
      if (!p.empty) lsr |= UART_LSR_DR;
      if (p.overrun) lsr |= UART_LSR_OE;
      if (p.empty) lsr |= UART_LSR_TEMT | UART_LSR_THRE;
      return lsr;
    }
    case UART_MSR: {
      let msr = UART_MSR_DSR | UART_MSR_DDSR | UART_MSR_DCD;
      const afe = p.uartReg[UART_MCR]! & UART_MCR_AFE;
      if (!afe || p.count < p.maxFifoSize) msr |= UART_MSR_CTS | UART_MSR_DCTS;
      return msr;
    }
    default:
      return 0;
  }
}

/** mdev_access: one naturally aligned access of 1, 2 or 4 bytes. False = the sample's -1. */
function access(st: MttyDevice, buf: Buffer, pos: number, isWrite: boolean): boolean {
  const { index, offset } = vfio.splitOffset(pos);
  if (index === vfio.VFIO_PCI_CONFIG_REGION_INDEX) {
    if (isWrite) pciCfgWrite(st, offset & 0xffff, buf);
    else if (offset < st.vconfig.length) st.vconfig.copy(buf, 0, offset, offset + buf.length);
    return true;
  }
  // The sample accepts BAR0..BAR5 and indexes its two-port array with the BAR
  // number; mdevfs refuses BAR2..BAR5 instead of reading past the array.
  if (index === vfio.VFIO_PCI_BAR0_REGION_INDEX || index === vfio.VFIO_PCI_BAR1_REGION_INDEX) {
    const port = st.s[index]!;
    if (isWrite) barWrite(port, offset & 0xffff, buf[0]!);
    else buf[0] = barRead(port, offset & 0xffff); // only the first byte is set
    return true;
  }
  return false;
}

/** mtty_read / mtty_write: split into naturally aligned 4/2/1-byte accesses. */
function chunks(count: number, pos: number): number[] {
  const sizes: number[] = [];
  while (count > 0) {
    const n = count >= 4 && pos % 4 === 0 ? 4 : count >= 2 && pos % 2 === 0 ? 2 : 1;
    sizes.push(n);
    count -= n;
    pos += n;
  }
  return sizes;
}

const types = [
  { id: '1', name: 'Single port serial', data: { nrPorts: 1 } },
  { id: '2', name: 'Dual port serial', data: { nrPorts: 2 } },
];
const nrPorts = (type: MdevType): number => (type.spec.data as { nrPorts: number }).nrPorts;

const plugin: VendorPlugin = {
  name: 'mtty',
  async init(mdev) {
    const legacy = mdev.profile === 'legacy';
    let availPorts = MAX_MTTYS; // mdev_avail_ports

    const ops: ParentOps<MttyDevice> = {
      driver: 'mtty',
      deviceApi: 'vfio-pci',
      types,
      mdevAttrGroups: [
        {
          name: 'vendor',
          attrs: [{ name: 'sample_mdev_dev', show: dev => `This is MDEV ${dev.uuid}\n` }],
        },
      ],
      devAttrGroups: [
        {
          name: 'mtty_dev',
          attrs: [{ name: 'sample_mtty_dev', show: () => 'This is phy device\n' }],
        },
      ],

      // 4.10 printed (24 - used) / N; today's get_available is the same division.
      getAvailable: type => Math.max(0, Math.floor(availPorts / nrPorts(type))),

      create(dev) {
        const n = nrPorts(dev.type);
        // mtty_init_dev refuses when the pool is short; 4.10's mtty_create never did.
        if (!legacy && availPorts < n) throw new MdevError('ENOSPC', `${availPorts} port(s) left, ${n} needed`);
        availPorts -= n;
        const st: MttyDevice = {
          nrPorts: n,
          vconfig: Buffer.alloc(MTTY_CONFIG_SPACE_SIZE + 1),
          barMask: [0, 0],
          s: [new SerialPort(), new SerialPort()],
          numIrqs: 0,
        };
        createConfigSpace(st);
        dev.drvdata = st;
      },
      remove(dev) {
        availPorts += dev.drvdata!.nrPorts; // mtty_release_dev
      },

      open() {
        /* nothing to set up */
      },
      close() {
        /* mtty_close drops the eventfds; none are emulated */
      },
      notifier() {
        /* mtty pins no guest pages: nothing to unpin */
      },

      read(dev, count, offset) {
        const st = dev.drvdata!;
        const out: Buffer[] = [];
        let pos = offset;
        for (const n of chunks(count, offset)) {
          const buf = Buffer.alloc(n);
          if (!access(st, buf, pos, false)) throw new MdevError('EFAULT', `no region at 0x${pos.toString(16)}`);
          out.push(buf);
          pos += n;
        }
        return Buffer.concat(out);
      },
      write(dev, data, offset) {
        const st = dev.drvdata!;
        let pos = offset;
        let done = 0;
        for (const n of chunks(data.length, offset)) {
          if (!access(st, data.subarray(done, done + n), pos, true)) {
            throw new MdevError('EFAULT', `no region at 0x${pos.toString(16)}`);
          }
          done += n;
          pos += n;
        }
        return done;
      },

      ioctl(dev, cmd, arg) {
        const st = dev.drvdata!;
        switch (cmd) {
          case vfio.VFIO_DEVICE_GET_INFO:
            vfio.checkArgsz(arg, vfio.DEVICE_INFO_MINSZ);
            vfio.writeDeviceInfo(arg, {
              flags: vfio.VFIO_DEVICE_FLAGS_PCI,
              numRegions: vfio.VFIO_PCI_NUM_REGIONS,
              numIrqs: vfio.VFIO_PCI_NUM_IRQS,
            });
            st.numIrqs = vfio.VFIO_PCI_NUM_IRQS;
            return 0;
          case vfio.VFIO_DEVICE_GET_REGION_INFO: {
            vfio.checkArgsz(arg, vfio.REGION_INFO_MINSZ);
            const index = arg.readUInt32LE(8);
            if (index >= vfio.VFIO_PCI_NUM_REGIONS) throw new MdevError('EINVAL', `region ${index}`);
            let size = 0;
            if (index === vfio.VFIO_PCI_CONFIG_REGION_INDEX) size = MTTY_CONFIG_SPACE_SIZE;
            else if (index === vfio.VFIO_PCI_BAR0_REGION_INDEX) size = MTTY_IO_BAR_SIZE;
            else if (index === vfio.VFIO_PCI_BAR1_REGION_INDEX && st.nrPorts === 2) size = MTTY_IO_BAR_SIZE;
            vfio.writeRegionInfo(arg, {
              flags: vfio.VFIO_REGION_INFO_FLAG_READ | vfio.VFIO_REGION_INFO_FLAG_WRITE,
              size,
              offset: vfio.regionOffset(index),
            });
            return 0;
          }
          case vfio.VFIO_DEVICE_GET_IRQ_INFO: {
            vfio.checkArgsz(arg, vfio.IRQ_INFO_MINSZ);
            const index = arg.readUInt32LE(8);
            if (index >= st.numIrqs) throw new MdevError('EINVAL', `irq index ${index} (call GET_INFO first)`);
            // 4.10's mtty also answered the REQ index; today's only INTx and MSI.
            const known = [vfio.VFIO_PCI_INTX_IRQ_INDEX, vfio.VFIO_PCI_MSI_IRQ_INDEX];
            if (legacy) known.push(vfio.VFIO_PCI_REQ_IRQ_INDEX);
            if (!known.includes(index)) throw new MdevError('EINVAL', `irq index ${index}`);
            const flags =
              vfio.VFIO_IRQ_INFO_EVENTFD |
              (index === vfio.VFIO_PCI_INTX_IRQ_INDEX
                ? vfio.VFIO_IRQ_INFO_MASKABLE | vfio.VFIO_IRQ_INFO_AUTOMASKED
                : vfio.VFIO_IRQ_INFO_NORESIZE);
            vfio.writeIrqInfo(arg, { flags, count: 1 });
            return 0;
          }
          case vfio.VFIO_DEVICE_RESET:
            return 0; // mtty_reset only logs (and resets migration state)
          default:
            throw new MdevError('ENOTTY', `ioctl 0x${cmd.toString(16)}`);
        }
      },
    };

    await mdev.registerDevice({ path: 'devices/virtual/mtty/mtty', typePrefix: 'mtty', subsystem: { class: 'mtty' } }, ops);
  },
};

export default plugin;
