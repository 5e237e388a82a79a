#!/usr/bin/env python3
"""The sysfs reads and writes of the public NVIDIA SR-IOV clients, call for
call (Go's os calls map onto Python's as go_clients.py says), to run inside
`mdevfs run` against examples/nvidia-ampere.ts or examples/nvidia-vgpu17.ts:

  ampere   NVIDIA go-nvlib pkg/nvpci (GetAllDevices: physfn through
           /sys/bus/pci/devices, sriov_totalvfs/sriov_numvfs of a PF) and
           pkg/nvmdev on VF parents, driven as NVIDIA/vgpu-device-manager
           pkg/vgpu/config.go drives them (GetPhysicalFunction, the
           create-until-full loop over the VFs); KubeVirt's mdev discovery
           (go_clients.py) over the VFs.
  vgpu17   NVIDIA/vgpu-device-manager pkg/vgpu/vfio (vfio.go, sysfs.go,
           types.go: the vendor-specific VFIO manager, sriov-manage -e when a
           GPU has no VFs), then KubeVirt 1.9's permitted PCI host device
           discovery (pkg/virt-handler/device-manager pci_device.go,
           common.go, nvidia.go) of VFs with a vGPU type.
  sriov    sriov_numvfs writes as an admin's `echo` makes them (one write),
           their errno, and what the tree shows after each.

Prints one JSON document.
"""
import errno
import glob
import json
import os
import re
import sys
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import go_clients as gc  # noqa: E402

PCI = '/sys/bus/pci/devices'
O_WRONLY, O_SYNC, O_TRUNC = os.O_WRONLY, os.O_SYNC, os.O_TRUNC


def read(path):
    with open(path, 'rb') as f:
        return f.read().decode()


def write(path, data, flags=O_WRONLY):
    """One write(2) (echo, os.OpenFile + WriteString): bytes written or the errno name."""
    try:
        fd = os.open(path, flags, 0o200)
    except OSError as e:
        return 'open:' + errno.errorcode[e.errno]
    try:
        return os.write(fd, data.encode())
    except OSError as e:
        return errno.errorcode[e.errno]
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------
# go-nvlib pkg/nvpci with SR-IOV (nvpci.go getNvidiaDeviceByPciBusID)

def parse_uint(s):
    """strconv.ParseUint(s, 0, n)."""
    return int(s, 0)


def nvpci_device(address, cache):
    if cache is not None and address in cache:
        return cache[address]
    path = os.path.join(PCI, address)
    vendor = parse_uint(read(os.path.join(path, 'vendor')).strip())
    if vendor not in (gc.NVIDIA_VENDOR, gc.MELLANOX_VENDOR):
        return None
    klass = parse_uint(read(os.path.join(path, 'class')).strip())
    device = parse_uint(read(os.path.join(path, 'device')).strip())
    numa = int(read(os.path.join(path, 'numa_node')).strip(), 0)
    subsys_vendor = parse_uint(read(os.path.join(path, 'subsystem_vendor')).strip())
    subsys_device = parse_uint(read(os.path.join(path, 'subsystem_device')).strip())
    try:
        driver = os.path.basename(os.path.realpath(os.path.join(path, 'driver'), strict=True))
    except FileNotFoundError:
        driver = ''
    try:
        group = int(os.path.basename(os.path.realpath(os.path.join(path, 'iommu_group'), strict=True)), 0)
    except FileNotFoundError:
        group = -1
    try:
        iommufd = [e.name for e in os.scandir(os.path.join(path, 'vfio-dev')) if e.is_dir() and e.name.startswith('vfio')][:1]
    except FileNotFoundError:
        iommufd = []  # a warning in go-nvlib
    resources = 0
    for i, line in enumerate(read(os.path.join(path, 'resource')).strip().split('\n')):
        values = line.split(' ')
        if len(values) != 3:
            raise gc.NvError("more than 3 entries in line '%d' of resource file" % i)
        start, end, _flags = (int(v, 0) for v in values)
        if end - start != 0:
            resources += 1
    sriov = None
    try:
        physfn = os.path.realpath(os.path.join(path, 'physfn'), strict=True)
        pf = nvpci_device(os.path.basename(physfn), cache)
        if pf is None:
            raise gc.NvError('unable to detect physfn for %s' % address)
        sriov = {'vf_of': pf['address']}
    except FileNotFoundError:
        if os.path.exists(os.path.join(path, 'sriov_totalvfs')):  # os.Stat
            sriov = {'total_vfs': parse_uint(read(os.path.join(path, 'sriov_totalvfs')).strip()),
                     'num_vfs': parse_uint(read(os.path.join(path, 'sriov_numvfs')).strip())}
    d = {'address': address, 'path': path, 'vendor': vendor, 'class': klass, 'device': device, 'numa_node': numa,
         'subsystem': [subsys_vendor, subsys_device], 'driver': driver, 'iommu_group': group,
         'iommufd': iommufd, 'resources': resources, 'sriov': sriov}
    if cache is not None and sriov and 'total_vfs' in sriov:
        cache[address] = d  # only physical functions are cached
    return d


def nvpci_all():
    cache = {}
    devs = [d for d in (nvpci_device(e.name, cache) for e in os.scandir(PCI)) if d is not None]
    devs.sort(key=lambda d: gc.address_id(d['address']))
    return devs


def is_vf(d):
    return bool(d['sriov'] and 'vf_of' in d['sriov'])


def nvpci_gpus():
    return [d for d in nvpci_all() if d['class'] in (0x030000, 0x030200) and not is_vf(d)]


def nvmdev_parents():
    """nvmdev.GetAllParentDevices: readdir /sys/class/mdev_bus, GetGPUByPciBusID (no cache), nvidia-*/name."""
    out = []
    for e in os.scandir('/sys/class/mdev_bus'):
        d = nvpci_device(e.name, None)
        if d is None or d['class'] not in (0x030000, 0x030200):
            continue
        paths = {}
        for p in sorted(glob.glob('%s/mdev_supported_types/nvidia-*/name' % d['path'])):
            paths[read(p).strip().split(' ')[-1]] = os.path.dirname(p)
        d['mdev_paths'] = paths
        out.append(d)
    out.sort(key=lambda d: gc.address_id(d['address']))
    return out


def physical_function(d):
    """GetPhysicalFunction: a VF's PF, else the device itself."""
    return d['sriov']['vf_of'] if is_vf(d) else d['address']


def nvmdev_devices():
    """nvmdev.GetAllDevices: EvalSymlinks, the parent is the dirname; mdev_type/name, driver, iommu_group."""
    out = []
    for e in os.scandir(gc.MDEV_BASE):
        m = os.path.realpath(os.path.join(gc.MDEV_BASE, e.name), strict=True)
        parent = nvpci_device(os.path.basename(os.path.dirname(m)), None)
        if parent is None:
            continue
        name = read(os.path.join(os.path.realpath(os.path.join(m, 'mdev_type'), strict=True), 'name')).strip()
        out.append({'uuid': e.name, 'path': os.path.join(gc.MDEV_BASE, e.name), 'type': name.split(' ')[-1],
                    'driver': os.path.basename(os.path.realpath(os.path.join(m, 'driver'), strict=True)),
                    'iommu_group': int(os.path.basename(os.path.realpath(os.path.join(m, 'iommu_group'), strict=True))),
                    'parent': parent['address'], 'pf': physical_function(parent)})
    return out


def vgpudm_get(gpu):
    device = nvpci_gpus()[gpu]
    config = {}
    for d in nvmdev_devices():
        if d['pf'] == device['address']:
            config[d['type']] = config.get(d['type'], 0) + 1
    return config


def vgpudm_clear(gpu):
    device = nvpci_gpus()[gpu]
    for d in nvmdev_devices():
        if d['pf'] == device['address']:
            r = write(os.path.join(d['path'], 'remove'), '1', O_WRONLY | O_SYNC)
            if not isinstance(r, int):
                raise gc.NvError('error deleting %s vGPU device with id %s: %s' % (d['type'], d['uuid'], r))


def vgpudm_set(gpu, config, log):
    """config.go SetVGPUConfig: the parents whose PF is the GPU, clear, then per parent
    min(remaining, available_instances) creates (O_WRONLY|O_SYNC, the 36-byte UUID)."""
    device = nvpci_gpus()[gpu]
    parents = [p for p in nvmdev_parents() if physical_function(p) == device['address']]
    if not parents:
        raise gc.NvError("no parent devices found for GPU at index '%d'" % gpu)
    for key in config:
        if key not in parents[0]['mdev_paths']:
            raise gc.NvError('vGPU type %s is not supported on GPU (index=%d, address=%s)' % (key, gpu, device['address']))
    vgpudm_clear(gpu)
    for key, val in config.items():
        remaining = val
        for parent in parents:
            if remaining == 0:
                break
            avail = int(read(os.path.join(parent['mdev_paths'][key], 'available_instances')).strip())
            log.append([parent['address'], avail])
            if avail <= 0:
                continue
            for _ in range(min(remaining, avail)):
                r = write(os.path.join(parent['mdev_paths'][key], 'create'), str(uuid.uuid4()), O_WRONLY | O_SYNC)
                if r != 36:
                    raise gc.NvError('unable to create %s vGPU device on parent device %s: %s' % (key, parent['address'], r))
            remaining -= min(remaining, avail)
        if remaining > 0:
            raise gc.NvError("failed to create %d %s vGPU devices on the GPU. ensure '%d' does not exceed the maximum supported instances for '%s'" % (val, key, val, key))


def scenario_ampere():
    res = {}
    devs = nvpci_all()
    res['devices'] = [{k: d[k] for k in ('address', 'device', 'driver', 'iommu_group', 'numa_node', 'resources', 'sriov')} for d in devs if d['vendor'] == gc.NVIDIA_VENDOR]
    res['gpus'] = [d['address'] for d in nvpci_gpus()]
    parents = nvmdev_parents()
    res['parents'] = [[p['address'], physical_function(p), len(p['mdev_paths'])] for p in parents]
    res['types'] = sorted(parents[0]['mdev_paths'])
    log = []
    vgpudm_set(0, {'A10-4Q': 6}, log)
    res['fill_available'] = log
    res['config'] = vgpudm_get(0)
    res['devices_after_fill'] = sorted(set((d['parent'], d['type'], d['driver']) for d in nvmdev_devices()))
    res['available_4q'] = [int(read(os.path.join(p['mdev_paths']['A10-4Q'], 'available_instances'))) for p in nvmdev_parents()]
    res['available_2q'] = sum(int(read(os.path.join(p['mdev_paths']['A10-2Q'], 'available_instances'))) for p in nvmdev_parents())
    try:
        vgpudm_set(0, {'A10-4Q': 7}, [])
        res['overask'] = None
    except gc.NvError as e:
        res['overask'] = str(e)
    res['config_after_overask'] = vgpudm_get(0)
    vgpudm_set(0, {'A10-2Q': 12}, [])
    res['config_2q'] = vgpudm_get(0)
    vgpudm_clear(0)
    res['config_cleared'] = vgpudm_get(0)
    res['kubevirt'] = kv_ring(['NVIDIA_A10-8Q'])
    res['kubevirt_config'] = vgpudm_get(0)
    res['kubevirt_again'] = kv_ring(['NVIDIA_A10-8Q'])
    return res


def kv_ring(desired):
    """KubeVirt mediated_devices_types.go: discoverConfigurableMDEVTypes (Glob, parents
    hosting mdevs left out), then configureDesiredMDEVTypes: a ring of the desired
    types, each turn configuring the next unconfigured parent of the type with as
    many O_WRONLY creates as its available_instances says, until no type or parent
    is left."""
    in_use = gc.kv_parents_in_use()
    available, unconfigured = {}, set()
    for file in sorted(glob.glob('/sys/class/mdev_bus/*/mdev_supported_types/*')):
        parent = file.split('/')[-3]
        try:
            raw = read(os.path.join(file, 'name'))
        except FileNotFoundError:
            raw = ''
        tid = os.path.basename(file)
        if (raw.replace(' ', '_').strip() in desired or tid in desired) and parent not in in_use:
            available.setdefault(tid, []).append(parent)
            unconfigured.add(parent)
    ring, turn, created = list(available), 0, []
    while ring:
        t = ring[turn % len(ring)]
        if t in available:
            parents = available[t]
            nxt = next((j for j, p in enumerate(parents) if p in unconfigured), None)
            parent, parents = (parents[nxt], parents[nxt + 1:]) if nxt is not None else ('', [])
            if parent:
                n = int(read('/sys/class/mdev_bus/%s/mdev_supported_types/%s/available_instances' % (parent, t)).split('\n')[0])
                created.append([parent, [gc.kv_create(parent, t)[1] for _ in range(n)]])
                available[t] = parents
                unconfigured.discard(parent)
            if not parents:
                del available[t]
        if not available or not unconfigured:
            break
        turn += 1
    return {'configured': len(created), 'writes': [w for _, ws in created for w in ws],
            'with_vgpu': [p for p, ws in created if ws]}


# ---------------------------------------------------------------------------
# vgpu-device-manager pkg/vgpu/vfio (vGPU 17+)

class Dev:
    def __init__(self, address):
        self.address = address

    def path(self, *elem):
        return os.path.join(PCI, self.address, *elem)

    def read_string(self, *elem):
        return read(self.path(*elem)).strip()

    def read_hex(self, name):
        return int(self.read_string(name).removeprefix('0x'), 16)

    def driver(self):
        return os.path.basename(os.readlink(self.path('driver')))

    def is_nvidia_gpu(self):
        try:
            return self.read_hex('vendor') == 0x10de and self.read_hex('class') in (0x030000, 0x030200)
        except (OSError, ValueError):
            return False

    def is_vf(self):
        try:
            os.lstat(self.path('physfn'))
            return True
        except FileNotFoundError:
            return False

    def is_vgpu_capable_pf(self):
        try:
            os.stat(self.path('sriov_totalvfs'))
            return self.driver() == 'nvidia'
        except OSError:
            return False

    def has_vgpu_sysfs(self):
        return os.path.isdir(self.path('nvidia'))

    def current(self):
        return int(self.read_string('nvidia', 'current_vgpu_type'))

    def creatable(self):
        """types.go parseCreatableVGPUTypes: "ID : Name" or "ID Name", non-numeric ids skipped."""
        out = []
        for line in read(self.path('nvidia', 'creatable_vgpu_types')).split('\n'):
            line = line.strip()
            if not line:
                continue
            if ':' in line:
                id_str, name = line.split(':', 1)
            else:
                f = line.split()
                if len(f) < 2:
                    continue
                id_str, name = f[0], ' '.join(f[1:])
            try:
                tid = int(id_str.strip())
            except ValueError:
                continue
            if name.strip():
                out.append((tid, name.strip()))
        return out

    def set_type(self, tid):
        """OpenFile(current_vgpu_type, O_WRONLY|O_TRUNC|O_SYNC, 0200), WriteString(strconv.Itoa(id))."""
        r = write(self.path('nvidia', 'current_vgpu_type'), str(tid), O_WRONLY | O_TRUNC | O_SYNC)
        if not isinstance(r, int):
            raise gc.NvError('unable to write vGPU type ID: %s' % r)

    def virtual_functions(self):
        """filepath.Glob(<pf>/virtfn*), Readlink basename, ordered by index."""
        by_index = {}
        for link in sorted(glob.glob(self.path() + '/virtfn*')):
            m = re.fullmatch(r'virtfn(\d+)', os.path.basename(link))
            if m:
                by_index[int(m.group(1))] = os.path.basename(os.readlink(link))
        return [Dev(by_index[i]) for i in sorted(by_index)]


def gpu_addresses():
    return sorted((e.name for e in os.scandir(PCI) if Dev(e.name).is_nvidia_gpu() and not Dev(e.name).is_vf()), key=gc.address_id)


def sriov_manage_enable(address):
    """sriov-manage -e <pf>: every VF the PF has (sriov_totalvfs into sriov_numvfs)."""
    pf = Dev(address)
    return write(pf.path('sriov_numvfs'), pf.read_string('sriov_totalvfs') + '\n')


def short(name):
    return name.split()[-1]


def registry(vfs):
    reg = {}
    for vf in vfs:
        try:
            for tid, name in vf.creatable():
                reg.setdefault(short(name), tid)
        except OSError:
            pass
    return reg


def vfio_clear(gpu):
    pf = Dev(gpu_addresses()[gpu])
    for vf in pf.virtual_functions():
        if not vf.has_vgpu_sysfs():
            raise gc.NvError('vGPU sysfs interface not found for VF %s' % vf.address)
        if vf.current() != 0:
            vf.set_type(0)


# vfio.go's TypeResolver is NVML (the GPU's supported types, whatever is in use), which
# a test without a GPU cannot run: this stands in for it, filled from
# creatable_vgpu_types while the GPU held no vGPU (when it lists every type).
NVML = {}


def vfio_get(gpu):
    """GetVGPUConfig: names from the VFs' creatable lists, then the resolver."""
    pf = Dev(gpu_addresses()[gpu])
    vfs = pf.virtual_functions()
    names = {tid: short(n) for vf in vfs for tid, n in vf.creatable()}
    config = {}
    for vf in vfs:
        c = vf.current()
        if c != 0:
            name = names.get(c) or NVML.get(c)
            if name is None:
                raise gc.NvError('error resolving vGPU type ID %d on VF %s: unknown vGPU type ID' % (c, vf.address))
            config[name] = config.get(name, 0) + 1
    return config


def vfio_set(gpu, config, enabled):
    pf = Dev(gpu_addresses()[gpu])
    if not pf.is_vgpu_capable_pf():
        raise gc.NvError('GPU does not expose the vendor-specific VFIO SR-IOV interface')
    vfs = pf.virtual_functions()
    if not vfs:
        enabled.append(sriov_manage_enable(pf.address))
        vfs = pf.virtual_functions()
    reg = registry(vfs)
    for tid, name in NVML.items():  # idForName: the resolver for names sysfs does not list
        reg.setdefault(name, tid)
    requests = []
    for key, val in config.items():
        if key not in reg:
            raise gc.NvError('vGPU type %s is not supported on GPU (index=%d, address=%s): unknown vGPU type' % (key, gpu, pf.address))
        requests.append((key, reg[key], val))
    vfio_clear(gpu)
    for name, tid, count in requests:
        remaining = count
        for vf in vfs:
            if remaining == 0:
                break
            if vf.current() != 0:
                continue
            if tid not in [t for t, _ in vf.creatable()]:  # re-read for every VF
                continue
            vf.set_type(tid)
            remaining -= 1
        if remaining > 0:
            raise gc.NvError("failed to create %d %s vGPU devices on the GPU. ensure '%d' does not exceed the maximum supported instances for '%s'" % (count, name, count, name))


def kubevirt_pci_discovery(selectors):
    """discoverPermittedHostPCIDevices: filepath.Walk of /sys/bus/pci/devices (lstat: the
    device links are not directories), PCI_ID from uevent, driver by Readlink; a
    non-vfio-pci device only if shouldPermitNvidia: driver nvidia, no sriov_totalvfs
    (IsPhysicalFunction), nvidia/current_vgpu_type neither empty nor 0 (HasVGPUProfile)."""
    found = {}
    for name in sorted(os.listdir(PCI)):  # Walk visits in lexical order
        if os.path.isdir(os.path.join(PCI, name)) and not os.path.islink(os.path.join(PCI, name)):
            continue
        try:
            pci_id = next(line.split('=', 1)[1].strip().lower() for line in read(os.path.join(PCI, name, 'uevent')).split('\n') if line.startswith('PCI_ID'))
        except (OSError, StopIteration):
            continue
        resource = selectors.get(pci_id)
        if resource is None:
            continue
        try:
            driver = os.path.basename(os.readlink(os.path.join(PCI, name, 'driver')))
        except OSError:
            continue
        if driver != 'vfio-pci':
            if driver != 'nvidia' or os.path.exists(os.path.join(PCI, name, 'sriov_totalvfs')):
                continue
            try:
                t = read(os.path.join(PCI, name, 'nvidia', 'current_vgpu_type')).strip()
            except FileNotFoundError:
                continue
            if t in ('', '0'):
                continue
        group = os.path.basename(os.readlink(os.path.join(PCI, name, 'iommu_group')))
        try:
            numa = int(read(os.path.join(PCI, name, 'numa_node')).strip())
        except (OSError, ValueError):
            numa = -1
        found.setdefault(resource, []).append({'address': name, 'iommu_group': group, 'numa_node': numa, 'driver': driver})
    return found


def creatable_ids(address):
    return [t for t, _ in Dev(address).creatable()]


def scenario_vgpu17():
    res = {}
    pf = gpu_addresses()[0]
    res['gpus'] = gpu_addresses()
    res['capable'] = Dev(pf).is_vgpu_capable_pf()
    res['pf_has_nvidia_dir'] = Dev(pf).has_vgpu_sysfs()
    # An admin turned SR-IOV off; SetVGPUConfig enables it again through sriov-manage -e.
    res['disable'] = write(Dev(pf).path('sriov_numvfs'), '0\n')
    res['vfs_before'] = len(Dev(pf).virtual_functions())
    res['sriov_manage_first'] = sriov_manage_enable(pf)
    NVML.update({tid: short(n) for tid, n in Dev('0000:41:00.4').creatable()})
    res['supported'] = sorted(NVML.values())
    res['disable_again'] = write(Dev(pf).path('sriov_numvfs'), '0\n')
    enabled = []
    watch = '0000:41:01.0'  # the fifth VF: free throughout
    vfio_set(0, {'L40S-24Q': 1}, enabled)
    res['enabled'] = enabled
    res['resolved_from_sysfs'] = vfio_get(0)
    res['vfs'] = [vf.address for vf in Dev(pf).virtual_functions()][:4]
    res['creatable_after_one'] = creatable_ids(watch)
    res['creatable_on_holder'] = read(Dev('0000:41:00.4').path('nvidia', 'creatable_vgpu_types'))
    vfio_set(0, {'L40S-24Q': 2}, enabled)
    res['creatable_full'] = creatable_ids(watch)
    res['creatable_full_text'] = read(Dev(watch).path('nvidia', 'creatable_vgpu_types'))
    res['config_24q'] = vfio_get(0)
    try:
        vfio_set(0, {'L40S-48Q': 2}, enabled)
        res['overask'] = None
    except gc.NvError as e:
        res['overask'] = str(e)
    vfio_set(0, {'L40S-12Q': 4}, enabled)
    res['config_12q'] = vfio_get(0)
    res['currents'] = [Dev(a).current() for a in ['0000:41:00.4', '0000:41:00.5', '0000:41:00.6', '0000:41:00.7', '0000:41:01.0']]
    res['placements'] = [Dev(a).read_string('nvidia', 'placement_id') for a in ['0000:41:00.4', '0000:41:00.7', '0000:41:01.0']]
    res['kubevirt'] = kubevirt_pci_discovery({'10de:26b9': 'nvidia.com/NVIDIA_L40S'})
    # Refusals an admin meets (sriov-manage -d, echo 0): the PF driver refuses while vGPUs exist.
    res['disable_busy'] = write(Dev(pf).path('sriov_numvfs'), '0\n')
    res['busy_vf_write'] = write(Dev('0000:41:00.4').path('nvidia', 'current_vgpu_type'), '1153', O_WRONLY | O_TRUNC)
    res['not_creatable'] = write(Dev(watch).path('nvidia', 'current_vgpu_type'), '1147', O_WRONLY | O_TRUNC)
    vfio_clear(0)
    res['config_cleared'] = vfio_get(0)
    res['creatable_cleared'] = creatable_ids(watch)
    res['kubevirt_cleared'] = kubevirt_pci_discovery({'10de:26b9': 'nvidia.com/NVIDIA_L40S'})
    return res


# ---------------------------------------------------------------------------
# sriov_numvfs as an admin writes it

def scenario_sriov():
    pf = '/sys/bus/pci/devices/0000:41:00.0'
    res = {}
    total = int(read(pf + '/sriov_totalvfs'))
    res['files'] = {n: read(pf + '/' + n) for n in ('sriov_totalvfs', 'sriov_numvfs', 'sriov_offset', 'sriov_stride', 'sriov_vf_device', 'sriov_drivers_autoprobe')}
    res['modes'] = {n: oct(os.stat(pf + '/' + n).st_mode & 0o777) for n in ('sriov_numvfs', 'sriov_totalvfs', 'sriov_drivers_autoprobe')}
    steps = [('over', str(total + 1)), ('u16_overflow', '65536'), ('negative', '-1'), ('word', 'four'), ('same', str(total) + '\n'), ('other', '4')]
    res['writes'] = {k: write(pf + '/sriov_numvfs', v) for k, v in steps}
    res['numvfs_after_refusals'] = read(pf + '/sriov_numvfs')
    vf0 = '/sys/class/mdev_bus/0000:41:00.4/mdev_supported_types/nvidia-593'
    u = str(uuid.uuid4())
    res['create'] = write(vf0 + '/create', u)
    res['disable_with_vgpu'] = write(pf + '/sriov_numvfs', '0')
    res['vgpu_still_there'] = os.path.exists('/sys/bus/mdev/devices/' + u)
    res['remove'] = write('/sys/bus/mdev/devices/%s/remove' % u, '1')
    res['disable'] = write(pf + '/sriov_numvfs', '0')
    res['after_disable'] = {
        'numvfs': read(pf + '/sriov_numvfs'),
        'virtfn': sorted(n for n in os.listdir(pf) if n.startswith('virtfn')),
        'mdev_bus': sorted(os.listdir('/sys/class/mdev_bus')),
        'vf_dir': os.path.exists('/sys/bus/pci/devices/0000:41:00.4'),
    }
    res['autoprobe_off'] = write(pf + '/sriov_drivers_autoprobe', '0')
    res['enable_unprobed'] = write(pf + '/sriov_numvfs', '2')
    vf = '/sys/bus/pci/devices/0000:41:00.5'
    res['unprobed'] = {'driver': os.path.lexists(vf + '/driver'), 'mdev_bus': sorted(os.listdir('/sys/class/mdev_bus')),
                       'uevent': read(vf + '/uevent').split('\n')[0]}
    res['redisable'] = write(pf + '/sriov_numvfs', '0')
    res['autoprobe_on'] = write(pf + '/sriov_drivers_autoprobe', 'y')
    res['enable'] = write(pf + '/sriov_numvfs', '2\n')
    res['after_enable'] = {
        'numvfs': read(pf + '/sriov_numvfs'),
        'links': {n: os.readlink(pf + '/' + n) for n in sorted(os.listdir(pf)) if n.startswith('virtfn')},
        'physfn': os.readlink(vf + '/physfn'),
        'physfn_via_bus': os.path.realpath(vf + '/physfn'),
        'driver': os.readlink(vf + '/driver'),
        'iommu_group': os.readlink(vf + '/iommu_group'),
        'group_devices': os.listdir('/sys/kernel/iommu_groups/201/devices'),
        'vf_device': read(vf + '/device'),
        'mdev_bus': sorted(os.listdir('/sys/class/mdev_bus')),
        'bus_drivers': sorted(n for n in os.listdir('/sys/bus/pci/drivers/nvidia') if n.startswith('0000:41')),
    }
    return res


if __name__ == '__main__':
    print(json.dumps({'ampere': scenario_ampere, 'vgpu17': scenario_vgpu17, 'sriov': scenario_sriov}[sys.argv[1]]()))
