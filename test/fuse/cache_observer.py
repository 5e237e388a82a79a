# The stress test's two processes (cache-exactness.test.ts): this script is the
# writer; it starts itself again as the observer, a separate process that
# checks the tree after each create and remove by stat, readdir and read, and
# counts what a stale kernel cache would show.
# Usage: cache_observer.py <mountpoint> <rounds>  → prints {"observed": n, "stale": n, "examples": [...]}
import json, os, subprocess, sys

MTTY = 'devices/virtual/mtty/mtty'
TYPE = 'class/mdev_bus/mtty/mdev_supported_types/mtty-1'


def uuid(n):
    return '00000000-0000-4000-8000-%012x' % n


def observer(mnt):
    j = lambda *p: os.path.join(mnt, *p)
    for line in sys.stdin:
        want = json.loads(line)
        u, present = want['uuid'], want['present']
        got = {}
        # First, before any listing of the directory refreshes its attributes (readdir invalidates atime).
        got['nlink'] = os.stat(j(MTTY)).st_nlink
        try:
            os.stat(j('bus/mdev/devices', u))
            got['stat'] = True
        except FileNotFoundError:
            got['stat'] = False
        got['readdir'] = u in os.listdir(j('bus/mdev/devices'))
        got['parent_dir'] = u in os.listdir(j(MTTY))
        with open(j(TYPE, 'available_instances')) as f:
            got['available'] = int(f.read())
        sys.stdout.write(json.dumps(got) + '\n')
        sys.stdout.flush()


def writer(mnt, rounds):
    j = lambda *p: os.path.join(mnt, *p)
    obs = subprocess.Popen([sys.executable, __file__, '--observe', mnt], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    base_nlink = os.stat(j(MTTY)).st_nlink
    with open(j(TYPE, 'available_instances')) as f:
        base_avail = int(f.read())
    observed = stale = 0
    examples = []

    def check(u, present):
        nonlocal observed, stale
        obs.stdin.write(json.dumps({'uuid': u, 'present': present}) + '\n')
        obs.stdin.flush()
        got = json.loads(obs.stdout.readline())
        expect = {
            'stat': present,
            'readdir': present,
            'parent_dir': present,
            'nlink': base_nlink + (1 if present else 0),
            'available': base_avail - (1 if present else 0),
        }
        for k, v in expect.items():
            observed += 1
            if got[k] != v:
                stale += 1
                if len(examples) < 5:
                    examples.append({'uuid': u, 'what': k, 'want': v, 'got': got[k]})

    for i in range(rounds):
        u = uuid(0x5000 + i)
        fd = os.open(j(TYPE, 'create'), os.O_WRONLY)
        os.write(fd, u.encode())
        os.close(fd)
        check(u, True)
        fd = os.open(j('bus/mdev/devices', u, 'remove'), os.O_WRONLY)
        os.write(fd, b'1')
        os.close(fd)
        check(u, False)
    obs.stdin.close()
    obs.wait()
    print(json.dumps({'observed': observed, 'stale': stale, 'examples': examples}))


if sys.argv[1] == '--observe':
    observer(sys.argv[2])
else:
    writer(sys.argv[1], int(sys.argv[2]))
