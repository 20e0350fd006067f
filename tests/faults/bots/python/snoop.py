"""Containment probe: looks for the server's secrets where a hostile bot would, and returns all
it could read. Its server is the first ancestor that is not botsys-launch or, under
start = "fork", botsys-zygote (/proc is the
machine's: /proc/self is this process even inside a PID namespace)."""

import json
import os
import sys

CAP = 4096  # bytes kept per file


def ppid_of(pid: str) -> str:
    with open(f"/proc/{pid}/stat") as fh:
        return fh.read().rsplit(")", 1)[1].split()[1]


def server_pid() -> str:
    pid = ppid_of("self")
    while open(f"/proc/{pid}/comm").read().startswith(("botsys-launch", "botsys-zygote")):
        pid = ppid_of(pid)
    return pid


def grab(path: str, found: dict, denied: list) -> None:
    try:
        with open(path, "rb") as fh:
            found[path] = fh.read(CAP).decode("utf-8", "replace")
    except OSError as exc:
        denied.append(f"{path}: {exc.strerror}")


payload = json.load(sys.stdin)["payload"]
server = server_pid()
found, denied = {}, []
for name in ("environ", "mem", "cmdline"):
    grab(f"/proc/{server}/{name}", found, denied)
try:
    fds = os.listdir(f"/proc/{server}/fd")
except OSError as exc:
    fds = []
    denied.append(f"/proc/{server}/fd: {exc.strerror}")
for fd in fds:
    grab(f"/proc/{server}/fd/{fd}", found, denied)
grab(payload["config"], found, denied)
for pid in (p for p in os.listdir("/proc") if p.isdigit()):  # the process list
    for name in ("environ", "cmdline"):
        grab(f"/proc/{pid}/{name}", found, denied)
print(json.dumps({"result": {"server": int(server), "found": found, "denied": denied}}))
