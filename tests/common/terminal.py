"""Run a command on a pseudo-terminal, as a person at a terminal would, typing one answer
after each prompt shows: a password prompt, or a question of `vecdrill menu`.

usage: terminal.py ANSWERS_JSON COMMAND [ARG...]

ANSWERS_JSON is a JSON list of strings; the Nth is typed once the Nth prompt (a line starting
"enter " and holding "password", ending ": "; or a menu question, ending "]> ") has appeared. Everything the terminal showed is
written to stdout; the exit code is the command's (128 + signal when a signal ended it).
"""

import fcntl
import json
import os
import pty
import re
import select
import struct
import sys
import termios
import time

PROMPT = re.compile(rb"enter [^\n]*password[^\n]*: |\]> ")


def main():
    answers = [a.encode() for a in json.loads(sys.argv[1])]
    command = sys.argv[2:]
    pid, fd = pty.fork()
    if pid == 0:
        # A person's terminal has a size: 80 columns by 24 rows.
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        os.execvp(command[0], command)
    shown = b""
    typed = 0
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if typed < len(answers) and len(PROMPT.findall(shown)) > typed:
            os.write(fd, answers[typed])
            typed += 1
        ready, _, _ = select.select([fd], [], [], 0.2)
        if not ready:
            continue
        try:
            data = os.read(fd, 4096)
        except OSError:
            break
        if not data:
            break
        shown += data
    else:
        os.kill(pid, 9)
        shown += b"\n[terminal.py: timed out]\n"
    _, status = os.waitpid(pid, 0)
    sys.stdout.buffer.write(shown)
    sys.exit(os.waitstatus_to_exitcode(status) if status & 0x7F == 0 else 128 + (status & 0x7F))


main()
