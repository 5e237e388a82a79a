"""Run a command on a new pseudo-terminal, as an interactive shell would.

    at_terminal.py <wait-for> <keys> -- <argv...>

The command gets the pty as its controlling terminal and is its foreground
process group. Once <wait-for> has appeared in its output, <keys> are typed
(Python escapes, e.g. \\x03 for Ctrl-C, which the pty's line discipline turns
into SIGINT for the foreground group). Prints one JSON line: the command's
wait status as an exit code (128+N for signal N) and everything it wrote.

Not script(1): its status passes through its own pty proxy and signal
forwarding (a CI run once saw it report a failure although the command's
output was complete); here the status comes straight from waitpid(2).
"""
import json
import os
import pty
import sys


def main():
    wait_for = sys.argv[1].encode()
    keys = sys.argv[2].encode().decode('unicode_escape').encode('latin-1')
    argv = sys.argv[sys.argv.index('--') + 1:]
    pid, master = pty.fork()
    if pid == 0:
        try:
            os.execvp(argv[0], argv)
        finally:
            os._exit(127)
    out = b''
    typed = False
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:  # EIO: every slave descriptor is closed
            break
        if not data:
            break
        out += data
        if not typed and wait_for in out:
            os.write(master, keys)
            typed = True
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    print(json.dumps({'status': 128 - code if code < 0 else code, 'typed': typed,
                      'output': out.decode('utf-8', 'replace')}))


main()
