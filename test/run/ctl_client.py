"""A test suite in another language would drive mdevfs this way: the control
socket straight from Python (docs/control.md), no `mdevfs ctl`. Run inside
`mdevfs run`, which sets MDEVFS_CTL. Prints one JSON document of what it saw."""
import errno
import json
import os
import socket

PATH = os.environ["MDEVFS_CTL"]
TYPE = "/sys/class/mdev_bus/mtty/mdev_supported_types/mtty-2"
U1 = "83b8f4f2-509f-382f-3c1e-e6bfe0fa3001"
U2 = "83b8f4f2-509f-382f-3c1e-e6bfe0fa3002"


def connect(req):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(PATH)
    s.sendall(json.dumps(req).encode() + b"\n")
    return s, s.makefile("r")


def request(req):
    s, f = connect(req)
    with s, f:
        return json.loads(f.readline())


def write(path, data):
    try:
        fd = os.open(path, os.O_WRONLY)
        try:
            os.write(fd, data.encode())
        finally:
            os.close(fd)
        return "ok"
    except OSError as e:
        return errno.errorcode[e.errno]


def read(path):
    with open(path) as f:
        return f.read()


out = {}
out["ping"] = request({"op": "ping"})
out["unknown"] = request({"op": "frob"})
out["empty"] = request({})
raw = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
raw.connect(PATH)
raw.sendall(b"hello\n")
out["garbage"] = json.loads(raw.makefile("r").readline())
raw.close()
out["fail"] = request({"op": "fail", "call": "create", "type": "mtty-2", "errno": "EDQUOT"})
out["create_failed"] = write(TYPE + "/create", U1)
out["devices_after_failure"] = sorted(os.listdir(TYPE + "/devices"))

# Subscribe, then act: every event after the reply is ours to read.
ev_sock, ev = connect({"op": "events"})
out["subscribed"] = json.loads(ev.readline())
out["create"] = write(TYPE + "/create", U2)
out["unplug"] = request({"op": "unplug", "parent": "mtty"})
events = []
while True:
    line = json.loads(ev.readline())["uevent"]
    events.append([line["ACTION"], line["DEVPATH"], line.get("MDEV_STATE")])
    if line.get("MDEV_STATE") == "unregistered":
        break
ev_sock.close()
out["events"] = events
out["mdev_bus"] = sorted(os.listdir("/sys/class/mdev_bus"))
out["state"] = request({"op": "state"})["state"]
out["plug"] = request({"op": "plug", "parent": "mtty"})
out["available"] = read(TYPE + "/available_instances")
out["set_available"] = request({"op": "set-available", "type": "mtty-2", "available": 2})
out["available_after"] = read(TYPE + "/available_instances")
print(json.dumps(out))
