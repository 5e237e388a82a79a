// The PCI parents' `config` file through a real mount (NVIDIA T4 and GVT-g
// examples): a 256-byte binary attribute whose bytes are parsed here on their
// own (offsets from include/uapi/linux/pci_regs.h), as libvirt's virpci.c
// does: header, capability list, the PCI Express capability and its link.
import t from 'tap';
import { startDaemon, mdevfsMount, sh, REPO } from '../helpers/daemon.js';
import { sys, one, readOnce } from '../helpers/sys.js';

const drivers = ['nvidia-vgpu', 'intel-gvtg'].flatMap(f => ['--driver', `${REPO}/examples/${f}.ts`]);

const u16 = (b: Buffer, o: number): number => b.readUInt16LE(o);
const u32 = (b: Buffer, o: number): number => b.readUInt32LE(o);

/** Walk the capability list from 0x34 (status bit 4 set); id → offset, in list order. */
function capabilities(cfg: Buffer): Array<[number, number]> {
  const caps: Array<[number, number]> = [];
  if (!(u16(cfg, 0x06) & 0x10)) return caps;
  let pos = cfg[0x34]! & 0xfc;
  for (let hops = 0; pos >= 0x40 && hops < 48; hops++) {
    caps.push([cfg[pos]!, pos]);
    pos = cfg[pos + 1]! & 0xfc;
  }
  return caps;
}

t.test('config space of the PCI parents', async t => {
  const d = await startDaemon(t, { command: mdevfsMount(...drivers) });
  const dev = (addr: string, f: string) => d.p(`bus/pci/devices/${addr}/${f}`);
  const whole = async (addr: string): Promise<Buffer> => {
    const r = await sys([
      ['open', dev(addr, 'config'), 'O_RDONLY'],
      ['pread', 0, 4096, 0],
      ['close', 0],
    ]);
    return Buffer.from(r[1]!.ok as string, 'latin1');
  };

  t.test('NVIDIA T4: identity, capability list, PCIe gen3 x16', async t => {
    const a = '0000:3b:00.0';
    t.match(await one(['stat', dev(a, 'config')]), { mode: 0o100644, size: 256 });
    t.match(await one(['stat', dev(a, 'vendor')]), { size: 4096 }, 'text attributes keep 4096');
    const cfg = await whole(a);
    t.equal(cfg.length, 256);
    // The identity matches the text files.
    t.equal(`0x${u16(cfg, 0).toString(16).padStart(4, '0')}\n`, await readOnce(dev(a, 'vendor')));
    t.equal(`0x${u16(cfg, 2).toString(16).padStart(4, '0')}\n`, await readOnce(dev(a, 'device')));
    t.equal(`0x${((cfg[0x0b]! << 16) | (cfg[0x0a]! << 8) | cfg[0x09]!).toString(16).padStart(6, '0')}\n`, await readOnce(dev(a, 'class')));
    t.equal(`0x${cfg[0x08]!.toString(16).padStart(2, '0')}\n`, await readOnce(dev(a, 'revision')));
    t.equal(u16(cfg, 0x2c), 0x10de, 'subsystem vendor');
    t.equal(u16(cfg, 0x2e), 0x12a2, 'subsystem device');
    t.equal(cfg[0x0e]! & 0x7f, 0, 'header type 0');
    t.equal(cfg[0x3c], 182, 'interrupt line = irq');
    // BAR0: the 32-bit register BAR of `resource`'s first line.
    const res0 = ((await readOnce(dev(a, 'resource'))) as string).split('\n')[0]!.split(' ');
    t.equal(u32(cfg, 0x10) & ~0xf, Number(BigInt(res0[0]!) & 0xfffffff0n) | 0);
    const caps = capabilities(cfg);
    t.same(
      caps.map(c => c[0]),
      [0x01, 0x05, 0x10],
      'PM → MSI → PCI Express',
    );
    const exp = caps.find(c => c[0] === 0x10)![1];
    const flags = u16(cfg, exp + 2);
    t.equal(flags & 0xf, 2, 'capability version 2');
    t.equal((flags >> 4) & 0xf, 0, 'PCI Express endpoint');
    const lnkcap = u32(cfg, exp + 0x0c);
    const lnksta = u16(cfg, exp + 0x12);
    t.equal(lnkcap & 0xf, 3, 'LNKCAP speed 8 GT/s');
    t.equal((lnkcap >> 4) & 0x3f, 16, 'LNKCAP width x16');
    t.equal(lnksta & 0xf, 3, 'LNKSTA speed 8 GT/s');
    t.equal((lnksta >> 4) & 0x3f, 16, 'LNKSTA width x16');
  });

  t.test('reads at offsets, across and past the end', async t => {
    const a = '0000:3b:00.0';
    const cfg = await whole(a);
    const r = await sys([
      ['open', dev(a, 'config'), 'O_RDONLY'],
      ['pread', 0, 1, 0x34],
      ['pread', 0, 64, 224],
      ['pread', 0, 16, 256],
      ['pread', 0, 16, 4096],
      ['close', 0],
    ]);
    t.equal(r[1]!.ok, cfg.subarray(0x34, 0x35).toString('latin1'), 'the capability pointer alone');
    t.equal((r[2]!.ok as string).length, 32, 'a read across the end is cut to the size');
    t.equal(r[3]!.ok, '', 'at the end: 0 bytes');
    t.equal(r[4]!.ok, '', 'past the end: 0 bytes');
    const od = await sh(
      `od -A x -t x1 -j 0x34 -N 1 ${dev(a, 'config')}; od -A x -t x2 -N 4 ${dev(a, 'config')}; wc -c < ${dev(a, 'config')}`,
    );
    t.equal(od.stdout, `000034 ${cfg[0x34]!.toString(16).padStart(2, '0')}\n000035\n000000 10de 1eb8\n000004\n256\n`);
  });

  t.test('GVT-g: an integrated endpoint, no link', async t => {
    const cfg = await whole('0000:00:02.0');
    t.equal(cfg.length, 256);
    t.equal(u16(cfg, 0), 0x8086);
    t.equal(u16(cfg, 2), 0x3e92);
    const exp = capabilities(cfg).find(c => c[0] === 0x10);
    t.ok(exp, 'a PCI Express capability');
    t.equal((u16(cfg, exp![1] + 2) >> 4) & 0xf, 9, 'Root Complex Integrated Endpoint');
  });
});
