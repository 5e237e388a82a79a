#!/usr/bin/env python3
"""The benchmark client without gcc: the same program as client.c (see there),
with the same syscalls through os.open/os.read/os.write/os.close. Slower per
call than C, so its figures are only comparable within one run."""
import os
import sys
import time

O_TRUNC_W = os.O_WRONLY | os.O_TRUNC
_hi = int.from_bytes(os.urandom(8), 'big')
_lo = int.from_bytes(os.urandom(8), 'big')
_counter = 0


def next_uuid():
    global _counter
    c = _counter
    _counter += 1
    return '%08x-%04x-4%03x-%04x-%012x' % (
        _hi >> 32, (_hi >> 16) & 0xffff, (_hi >> 4) & 0xfff,
        0x8000 | (_lo & 0x3fff), (c + (_lo >> 16)) & 0xffffffffffff)


def read_once(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        while os.read(fd, 65536):
            pass
    finally:
        os.close(fd)


def write_once(path, data):
    fd = os.open(path, O_TRUNC_W)
    try:
        n = os.write(fd, data)
        if n != len(data):
            raise OSError(5, 'short write', path)
    finally:
        os.close(fd)


def cycle_once(create, devdir):
    u = next_uuid()
    write_once(create, u.encode())
    write_once('%s/%s/remove' % (devdir, u), b'1')


def timed(fn, secs, warm):
    for _ in range(warm):
        fn()
    ops = 0
    t0 = time.monotonic()
    while True:
        fn()
        ops += 1
        t1 = time.monotonic()
        if t1 - t0 >= secs:
            return ops, t1 - t0


def main(argv):
    try:
        if len(argv) == 5 and argv[1] == 'read':
            ops, sec = timed(lambda: read_once(argv[2]), float(argv[3]), int(argv[4]))
        elif len(argv) == 6 and argv[1] == 'cycle':
            ops, sec = timed(lambda: cycle_once(argv[2], argv[3]), float(argv[4]), int(argv[5]))
        elif len(argv) == 4 and argv[1] == 'fill':
            count = int(argv[3])
            t0 = time.monotonic()
            for _ in range(count):
                write_once(argv[2], next_uuid().encode())
            ops, sec = count, time.monotonic() - t0
        else:
            sys.stderr.write('usage: client.py read <file> <seconds> <warmup> | '
                             'cycle <create> <devdir> <seconds> <warmup> | fill <create> <count>\n')
            return 2
    except OSError as e:
        sys.stderr.write('client: %s: %s\n' % (e.filename, e.strerror))
        return 1
    print('ops %d sec %.6f' % (ops, sec))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
