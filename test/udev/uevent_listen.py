"""A raw listener on NETLINK_KOBJECT_UEVENT, in the caller's network namespace.

    uevent_listen.py GROUPS ACTIONS_JSON

Joins the multicast groups in the bitmask GROUPS (1: kernel, 2: udev) with
SO_PASSCRED, then performs each action in turn and collects what arrives
until 0.3 s after the last message of that action (2 s without any): an
action is {"write": path, "data": text} (one write(2), as `echo >` does),
{"sh": command} or {"sleep": seconds}. Prints one JSON document: each
action's start and end and each message's arrival (ms on one monotonic
clock), sender port id, credentials (pid, uid, gid), whether it is in
udevd's format, its header fields and its properties in wire order.
"""
import json, os, select, socket, struct, subprocess, sys, time

NETLINK_KOBJECT_UEVENT = 15
SCM_CREDENTIALS = 2

groups = int(sys.argv[1])
actions = json.loads(sys.argv[2])
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_KOBJECT_UEVENT)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
s.bind((0, groups))
t0 = time.monotonic()
ms = lambda: round((time.monotonic() - t0) * 1000, 3)


def parse(data):
    m = {'len': len(data)}
    if data[:8] == b'libudev\0':
        magic, = struct.unpack('>I', data[8:12])
        hsize, poff, plen = struct.unpack('<III', data[12:24])
        sh, dh, bh, bl = struct.unpack('>IIII', data[24:40])
        m.update(format='udev', magic=magic, header_size=hsize, properties_off=poff, properties_len=plen,
                 subsystem_hash=sh, devtype_hash=dh, bloom_hi=bh, bloom_lo=bl)
        body = data[poff:poff + plen]
        m['nul_terminated'] = body.endswith(b'\0')
    else:
        m['format'] = 'kernel'
        body = data[data.index(b'\0') + 1:] if b'\0' in data else b''
    m['props'] = [kv.split('=', 1) for kv in body.decode('utf-8', 'replace').split('\0') if '=' in kv]
    return m


def drain(quiet, limit):
    got = []
    last = time.monotonic()
    end = last + limit
    while True:
        now = time.monotonic()
        if now >= end or (got and now - last >= quiet):
            return got
        r, _, _ = select.select([s], [], [], 0.02)
        if not r:
            continue
        data, anc, _, addr = s.recvmsg(65536, socket.CMSG_SPACE(12))
        m = parse(data)
        m['ms'] = ms()
        m['port'] = addr[0]
        for level, typ, cdata in anc:
            if level == socket.SOL_SOCKET and typ == SCM_CREDENTIALS:
                m['pid'], m['uid'], m['gid'] = struct.unpack('iII', cdata[:12])
        got.append(m)
        last = time.monotonic()


out = []
for a in actions:
    rec = {'action': a, 'start': ms()}
    if 'write' in a:
        try:
            fd = os.open(a['write'], os.O_WRONLY)
            try:
                os.write(fd, a['data'].encode())
            finally:
                os.close(fd)
            rec['ok'] = True
        except OSError as e:
            rec['ok'] = False
            rec['error'] = e.strerror
    elif 'sh' in a:
        p = subprocess.run(['/bin/sh', '-c', a['sh']], capture_output=True, timeout=60)
        rec['code'], rec['out'] = p.returncode, p.stdout.decode('utf-8', 'replace')
    elif 'sleep' in a:
        time.sleep(a['sleep'])
    rec['end'] = ms()
    rec['messages'] = drain(0.3, a.get('wait', 2.0))
    out.append(rec)
print(json.dumps(out))
