#!/usr/bin/env python3
"""The sysfs reads and writes of the Go mdev clients (sources listed below),
reproduced call for call, to run inside `mdevfs run` against the NVIDIA example:

  kubevirt  KubeVirt: pkg/virt-handler/device-manager/mediated_devices_types.go
            (type discovery and creation), cmd/virt-chroot/mdev-handler.go (the
            writes), mediated_device.go (the device plugin's listing), and
            NVIDIA/kubevirt-gpu-device-plugin's listing.
  nvlib     NVIDIA go-nvlib pkg/nvpci + pkg/nvmdev, driven the way
            NVIDIA/vgpu-device-manager pkg/vgpu/config.go drives them.

Go's os package maps one to one onto these calls: os.OpenFile -> os.open (both
add O_CLOEXEC), os.ReadFile -> open+read to EOF, os.Readlink -> os.readlink,
os.ReadDir + DirEntry.Type() -> os.scandir (d_type, no stat), filepath.Glob ->
glob.glob (sorted), filepath.EvalSymlinks -> os.path.realpath(strict=True),
filepath.Walk -> lstat-based walk. Prints one JSON document.
"""
import glob
import json
import os
import sys
import time
import uuid

O_WRONLY = os.O_WRONLY
O_SYNC = os.O_SYNC


def read_file(path):
    with open(path, 'rb') as f:
        return f.read().decode()


def write_once(path, data, flags):
    """os.OpenFile(path, flags, 0200) + one Write; returns bytes written or 'ERRNO'."""
    try:
        fd = os.open(path, flags, 0o200)
    except OSError as e:
        return 'open:' + errno_name(e)
    try:
        return os.write(fd, data.encode())
    except OSError as e:
        return errno_name(e)
    finally:
        os.close(fd)  # Go: defer f.Close() (mdev-handler) or the finalizer (go-nvlib)


def errno_name(e):
    import errno
    return errno.errorcode.get(e.errno, str(e.errno))


def eval_symlinks(path):
    return os.path.realpath(path, strict=True)


# ---------------------------------------------------------------------------
# KubeVirt

MDEV_BASE = '/sys/bus/mdev/devices'
PCI_BASE = '/sys/bus/pci/devices'


def kv_discover(desired):
    """discoverConfigurableMDEVTypes: Glob("/sys/class/mdev_bus/**/mdev_supported_types/*")
    (Go's ** is *); the parent is the third-from-last component; the name has
    spaces -> '_' and is trimmed; a type matches by name or by its directory (ID)."""
    found = {}
    for file in glob.glob('/sys/class/mdev_bus/*/mdev_supported_types/*'):
        parts = file.split('/')
        parent = parts[-3]
        try:
            raw = read_file(os.path.join(file, 'name'))
        except FileNotFoundError:
            raw = ''
        name = raw.replace(' ', '_').strip()
        type_id = os.path.basename(file)
        if name in desired or type_id in desired:
            found.setdefault(type_id, {'name': name, 'parents': []})['parents'].append(parent)
    return found


def kv_parents_in_use():
    """Parents that host any mdev: Readlink(/sys/bus/mdev/devices/<u>), >= 5
    components, the parent is the second-to-last."""
    used = set()
    for e in os.scandir(MDEV_BASE):
        link = os.readlink(os.path.join(MDEV_BASE, e.name))
        parts = link.split('/')
        if len(parts) >= 5:
            used.add(parts[-2])
    return used


def kv_create(parent, type_id):
    """mdev-handler.go: poll stat of create (up to 5 s), O_WRONLY (no O_TRUNC), the 36-byte UUID."""
    path = os.path.join('/sys/class/mdev_bus', parent, 'mdev_supported_types', type_id, 'create')
    deadline = time.time() + 5
    while True:
        try:
            os.stat(path)
            break
        except FileNotFoundError:
            if time.time() > deadline:
                return None, 'ENOENT'
            time.sleep(0.1)
    u = str(uuid.uuid4())
    return u, write_once(path, u, O_WRONLY)


def kv_configure(desired):
    """One type per parent, parents already hosting mdevs skipped; create as
    many as available_instances says (first line, Atoi)."""
    found = kv_discover(desired)
    in_use = kv_parents_in_use()
    taken = set()
    created = []
    for want in desired:
        for type_id, info in sorted(found.items()):
            if want not in (type_id, info['name']):
                continue
            for parent in info['parents']:
                if parent in in_use or parent in taken:
                    continue
                taken.add(parent)
                avail_path = os.path.join('/sys/class/mdev_bus', parent, 'mdev_supported_types', type_id, 'available_instances')
                n = int(read_file(avail_path).split('\n')[0])
                writes = []
                for _ in range(n):
                    u, r = kv_create(parent, type_id)
                    writes.append(r)
                after = int(read_file(avail_path).split('\n')[0])
                created.append({'parent': parent, 'type': type_id, 'available_before': n, 'writes': writes, 'available_after': after})
                break
    return {'discovered': found, 'in_use': sorted(in_use), 'created': created}


def kv_device_plugin():
    """mediated_device.go: ReadDir, symlinks only; type from mdev_type/name
    (spaces -> '_'); parent from the raw Readlink; numa_node from
    /sys/bus/pci/devices/<parent>/numa_node; the device ID is the basename of
    Readlink(<u>/iommu_group)."""
    out = []
    for e in sorted(os.scandir(MDEV_BASE), key=lambda e: e.name):
        if not e.is_symlink():
            continue
        u = e.name
        name = read_file(os.path.join(MDEV_BASE, u, 'mdev_type', 'name')).replace(' ', '_').strip()
        link = os.readlink(os.path.join(MDEV_BASE, u))
        parts = link.split('/')
        parent = parts[-2]
        numa = read_file(os.path.join(PCI_BASE, parent, 'numa_node')).strip()
        group = os.path.basename(os.readlink(os.path.join(MDEV_BASE, u, 'iommu_group')))
        out.append({'uuid': u, 'type_name': name, 'parent': parent, 'link_parts': len(parts), 'numa_node': int(numa), 'iommu_group': group})
    return out


def nv_kubevirt_plugin():
    """NVIDIA kubevirt-gpu-device-plugin: filepath.Walk(/sys/bus/mdev/devices),
    entries that are directories skipped (Walk lstats, so the device links
    count), type from mdev_type/name with whitespace -> '_', the GPU is the
    second-to-last component of Readlink, numa_node of that GPU."""
    out = []
    for name in sorted(os.listdir(MDEV_BASE)):
        p = os.path.join(MDEV_BASE, name)
        if os.path.isdir(p) and not os.path.islink(p):
            continue
        type_name = '_'.join(read_file(os.path.join(p, 'mdev_type', 'name')).split())
        gpu = os.readlink(p).split('/')[-2]
        numa = int(read_file(os.path.join(PCI_BASE, gpu, 'numa_node')).strip())
        out.append({'uuid': name, 'type_name': type_name, 'gpu': gpu, 'numa_node': numa})
    return out


def kv_remove_undesired(desired):
    """removeUndesiredMDEVs: an mdev whose mdev_type/name (spaces -> '_') or
    mdev_type link basename is not desired gets "1" written to remove (O_WRONLY)."""
    removed = []
    for name in sorted(os.listdir(MDEV_BASE)):
        try:
            type_name = read_file(os.path.join(MDEV_BASE, name, 'mdev_type', 'name')).replace(' ', '_')
        except OSError:
            type_name = None
        if type_name is not None and type_name.strip() in desired:
            continue
        if os.path.basename(os.readlink(os.path.join(MDEV_BASE, name, 'mdev_type'))) in desired:
            continue
        removed.append({'uuid': name, 'write': write_once(os.path.join(MDEV_BASE, name, 'remove'), '1', O_WRONLY)})
    return removed


def available_everywhere():
    out = {}
    for parent in sorted(os.listdir('/sys/class/mdev_bus')):
        tdir = os.path.join('/sys/class/mdev_bus', parent, 'mdev_supported_types')
        out[parent] = {t: int(read_file(os.path.join(tdir, t, 'available_instances'))) for t in sorted(os.listdir(tdir))}
    return out


def scenario_kubevirt():
    res = {}
    desired = ['GRID_T4-2Q', 'nvidia-228']  # one by name, one by type ID
    res['first'] = kv_configure(desired)
    res['available_after_first'] = available_everywhere()
    res['second'] = kv_configure(desired)  # every parent now hosts mdevs: nothing to do
    res['device_plugin'] = kv_device_plugin()
    res['nvidia_plugin'] = nv_kubevirt_plugin()
    res['removed'] = kv_remove_undesired(['GRID_T4-2Q'])
    res['device_plugin_after_remove'] = kv_device_plugin()
    res['available_after_remove'] = available_everywhere()
    return res


# ---------------------------------------------------------------------------
# go-nvlib (pkg/nvpci, pkg/nvmdev) and vgpu-device-manager

NVIDIA_VENDOR = 0x10de
MELLANOX_VENDOR = 0x15b3


class NvError(Exception):
    pass


def nvpci_get_gpu_by_pci_bus_id(root, address):
    """nvpci.GetGPUByPciBusID with WithPCIDevicesRoot(root)."""
    device_path = os.path.join(root, address)
    vendor = int(read_file(os.path.join(device_path, 'vendor')).strip(), 0)
    if vendor not in (NVIDIA_VENDOR, MELLANOX_VENDOR):
        return None
    klass = int(read_file(os.path.join(device_path, 'class')).strip(), 0)
    device = int(read_file(os.path.join(device_path, 'device')).strip(), 0)
    try:
        driver = os.path.basename(eval_symlinks(os.path.join(device_path, 'driver')))
    except FileNotFoundError:
        driver = ''
    try:
        iommu_group = int(os.path.basename(eval_symlinks(os.path.join(device_path, 'iommu_group'))).strip(), 0)
    except FileNotFoundError:
        iommu_group = -1
    try:
        eval_symlinks(os.path.join(device_path, 'physfn'))
        is_vf = True
    except FileNotFoundError:
        is_vf = False
    numa = int(read_file(os.path.join(device_path, 'numa_node')).strip(), 0)
    resources = {}
    for i, line in enumerate(read_file(os.path.join(device_path, 'resource')).strip().split('\n')):
        values = line.split(' ')
        if len(values) != 3:
            raise NvError("more than 3 entries in line '%d' of resource file" % i)
        start, end, flags = (int(v, 0) for v in values)
        if end - start != 0:
            resources[i] = {'start': start, 'end': end, 'flags': flags}
    return {'path': device_path, 'address': address, 'vendor': vendor, 'class': klass, 'device': device,
            'driver': driver, 'iommu_group': iommu_group, 'numa_node': numa, 'resources': len(resources), 'is_vf': is_vf}


def address_id(address):
    return int(address.replace(':', '').replace('.', ''), 16)


def nvpci_get_gpus():
    """nvpci.New().GetGPUs(): every NVIDIA device under /sys/bus/pci/devices, VGA or 3D class, not a VF."""
    devs = []
    for e in os.scandir(PCI_BASE):
        d = nvpci_get_gpu_by_pci_bus_id(PCI_BASE, e.name)
        if d is not None:
            devs.append(d)
    devs.sort(key=lambda d: address_id(d['address']))
    return [d for d in devs if d['class'] in (0x030000, 0x030200) and not d['is_vf']]


def nvmdev_new_parent_device(device_path):
    """nvmdev.NewParentDevice: the PCI device at dirname/basename, plus
    mdev_supported_types/nvidia-*/name -> type name after the first space."""
    d = nvpci_get_gpu_by_pci_bus_id(os.path.dirname(device_path), os.path.basename(device_path))
    if d is None:
        return None
    paths = {}
    for p in glob.glob('%s/mdev_supported_types/nvidia-*/name' % d['path']):
        name = read_file(p).strip()
        split = name.split(' ', 1)
        if len(split) != 2:
            raise NvError('unable to parse mdev_type name %s at path %s' % (name, p))
        paths[split[-1]] = os.path.dirname(p)
    d['mdev_paths'] = paths
    return d


def nvmdev_get_all_parent_devices():
    out = []
    for e in os.scandir('/sys/class/mdev_bus'):
        p = nvmdev_new_parent_device(os.path.join('/sys/class/mdev_bus', e.name))
        if p is not None:
            out.append(p)
    out.sort(key=lambda d: address_id(d['address']))
    return out


def nvmdev_new_device(root, u):
    """nvmdev.NewDevice: EvalSymlinks(<root>/<u>); the parent is its dirname;
    mdev_type/name, driver and iommu_group (an integer basename) are required."""
    path = os.path.join(root, u)
    m = eval_symlinks(path)
    parent = nvmdev_new_parent_device(os.path.dirname(m))
    if parent is None:
        return None
    name = read_file(os.path.join(eval_symlinks(os.path.join(m, 'mdev_type')), 'name')).strip()
    split = name.split(' ', 1)
    if len(split) != 2:
        raise NvError("unable to parse mdev_type name '%s'" % name)
    driver = os.path.basename(eval_symlinks(os.path.join(m, 'driver')))
    group = int(os.path.basename(eval_symlinks(os.path.join(m, 'iommu_group'))).strip(), 0)
    return {'path': path, 'uuid': u, 'mdev_name': name, 'mdev_type': split[1], 'driver': driver,
            'iommu_group': group, 'parent': parent['address'], 'parent_path': parent['path']}


def nvmdev_get_all_devices():
    out = []
    for e in os.scandir(MDEV_BASE):
        d = nvmdev_new_device(MDEV_BASE, e.name)
        if d is not None:
            out.append(d)
    return out


def available(parent, mdev_type):
    """ParentDevice.GetAvailableMDEVInstances: -1 when unsupported."""
    p = parent['mdev_paths'].get(mdev_type)
    if p is None:
        return -1
    return int(read_file(os.path.join(p, 'available_instances')).strip())


def create_mdev(parent, mdev_type, u):
    """ParentDevice.CreateMDEVDevice: OpenFile(create, O_WRONLY|O_SYNC, 0200), WriteString(uuid)."""
    p = parent['mdev_paths'].get(mdev_type)
    if p is None:
        raise NvError('unable to create mdev %s: mdev not supported by parent device %s' % (mdev_type, parent['address']))
    r = write_once(os.path.join(p, 'create'), u, O_WRONLY | O_SYNC)
    if not isinstance(r, int):
        raise NvError('unable to create mdev: %s' % r)
    return r


def delete_mdev(dev):
    """Device.Delete: OpenFile(<path>/remove, O_WRONLY|O_SYNC), WriteString("1")."""
    r = write_once(os.path.join(dev['path'], 'remove'), '1', O_WRONLY | O_SYNC)
    if not isinstance(r, int):
        raise NvError('unable to delete mdev: %s' % r)


def vgpudm_get_config(gpu):
    device = nvpci_get_gpus()[gpu]
    config = {}
    for d in nvmdev_get_all_devices():
        if d['parent'] == device['address']:  # GetPhysicalFunction: not a VF, so itself
            config[d['mdev_type']] = config.get(d['mdev_type'], 0) + 1
    return config


def vgpudm_clear_config(gpu):
    device = nvpci_get_gpus()[gpu]
    for d in nvmdev_get_all_devices():
        if d['parent'] == device['address']:
            delete_mdev(d)


def vgpudm_set_config(gpu, config, writes):
    """SetVGPUConfig: check support, clear, then per type create
    min(remaining, available_instances) on each parent of the GPU."""
    device = nvpci_get_gpus()[gpu]
    parents = [p for p in nvmdev_get_all_parent_devices() if p['address'] == device['address']]
    if not parents:
        raise NvError("no parent devices found for GPU at index '%d'" % gpu)
    for key in config:
        if key not in parents[0]['mdev_paths']:
            raise NvError('vGPU type %s is not supported on GPU (index=%d, address=%s)' % (key, gpu, device['address']))
    vgpudm_clear_config(gpu)
    for key, val in config.items():
        remaining = val
        for parent in parents:
            if remaining == 0:
                break
            avail = available(parent, key)
            if avail <= 0:
                continue
            n = min(remaining, avail)
            for _ in range(n):
                writes.append(create_mdev(parent, key, str(uuid.uuid4())))
            remaining -= n
        if remaining > 0:
            raise NvError("failed to create %d %s vGPU devices on the GPU. ensure '%d' does not exceed the maximum supported instances for '%s'" % (val, key, val, key))


def scenario_nvlib():
    res = {}
    gpus = nvpci_get_gpus()
    res['gpus'] = [{k: v for k, v in g.items() if k != 'path'} for g in gpus]
    res['parents'] = [{'address': p['address'], 'types': sorted(p['mdev_paths'])} for p in nvmdev_get_all_parent_devices()]
    # Fill every GPU with its maximum of T4-2Q: create until available_instances reads 0.
    writes = []
    for i in range(len(gpus)):
        max_2q = available(nvmdev_new_parent_device(gpus[i]['path']), 'T4-2Q')
        vgpudm_set_config(i, {'T4-2Q': max_2q}, writes)
    res['fill_writes'] = writes
    res['config_after_fill'] = [vgpudm_get_config(i) for i in range(len(gpus))]
    res['available_after_fill'] = available_everywhere()
    devs = nvmdev_get_all_devices()
    res['devices'] = {'count': len(devs), 'drivers': sorted({d['driver'] for d in devs}),
                      'types': sorted({d['mdev_type'] for d in devs}), 'groups_are_ints': all(isinstance(d['iommu_group'], int) for d in devs),
                      'parents': sorted({d['parent'] for d in devs})}
    # Reconfigure GPU 0 with another type: clear (16 removes) then 4 creates.
    writes = []
    vgpudm_set_config(0, {'T4-4Q': 4}, writes)
    res['reconfig_writes'] = writes
    res['config_after_reconfig'] = vgpudm_get_config(0)
    # Ask for more than a GPU holds: it creates what it can, then fails.
    writes = []
    try:
        vgpudm_set_config(1, {'T4-16Q': 2}, writes)
        res['overask_error'] = None
    except NvError as e:
        res['overask_error'] = str(e)
    res['overask_writes'] = writes
    res['config_after_overask'] = vgpudm_get_config(1)
    for i in range(len(gpus)):
        vgpudm_clear_config(i)
    res['devices_after_clear'] = sorted(os.listdir(MDEV_BASE))
    res['available_after_clear'] = available_everywhere()
    return res


if __name__ == '__main__':
    scenario = {'kubevirt': scenario_kubevirt, 'nvlib': scenario_nvlib}[sys.argv[1]]
    print(json.dumps(scenario()))
