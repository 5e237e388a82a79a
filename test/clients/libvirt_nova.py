"""What OpenStack Nova asks libvirt about mediated devices, through python3-libvirt.

    libvirt_nova.py URI

Prints one JSON document: listDevices('mdev_types'), the names from
listAllDevices with the MDEV_TYPES and MDEV capability flags, and for each
parent the types from its XML (id, name, deviceAPI, availableInstances), as
Nova's _get_mdev_capable_devices / _get_mediated_devices read them.
"""
import json, sys
import xml.etree.ElementTree as ET
import libvirt

conn = libvirt.open(sys.argv[1])
out = {
    'listDevices': sorted(conn.listDevices('mdev_types', 0)),
    'mdevTypesParents': sorted(d.name() for d in conn.listAllDevices(libvirt.VIR_CONNECT_LIST_NODE_DEVICES_CAP_MDEV_TYPES)),
    'mdevs': sorted(d.name() for d in conn.listAllDevices(libvirt.VIR_CONNECT_LIST_NODE_DEVICES_CAP_MDEV)),
    'types': {},
}
for name in out['mdevTypesParents']:
    root = ET.fromstring(conn.nodeDeviceLookupByName(name).XMLDesc(0))
    types = {}
    for t in root.iter('type'):
        if t.get('id') is None or t.find('availableInstances') is None:
            continue
        types[t.get('id')] = {
            'name': (t.findtext('name') or ''),
            'deviceAPI': t.findtext('deviceAPI'),
            'availableInstances': int(t.findtext('availableInstances')),
        }
    out['types'][name] = types
conn.close()
print(json.dumps(out))
