"""Fault-suite probe: logs its own start and end (CLOCK_MONOTONIC) to the file in the payload.

Lines (appended, one write each): ``S type job attempt start_ns pid ppid`` when it starts and
``E type job attempt start_ns end_ns pid ppid`` when it ends normally. A probe killed mid-run
leaves only its S line. ``ppid`` is the serve replica that started it: the parent, or the
parent of ``botsys-launch`` when that stands between. Pids are the machine's (read from
/proc/self, which shows them even inside the bot's PID namespace, where getpid() says 2).
Payload: ``log`` (path), ``sleepMs``, ``killParent``: a ``K <replica pid>`` line asks the
test's Supervisor to SIGKILL that replica (a bot in its own PID namespace cannot signal it).
"""

import json
import os
import sys
import time

start = time.monotonic_ns()
envelope = json.load(sys.stdin)
payload = envelope.get("payload") or {}
head = f"python {envelope['jobId']} {envelope['attempt']}"


def ppid_of(pid: str) -> str:
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()[1]


def server_pid() -> int:
    pid = ppid_of("self")
    while open(f"/proc/{pid}/comm").read().startswith(("botsys-launch", "botsys-zygote")):
        pid = ppid_of(pid)
    return int(pid)


pid, ppid = int(os.readlink("/proc/self")), server_pid()


def append(line: str) -> None:
    fd = os.open(payload["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


append(f"S {head} {start} {pid} {ppid}")
if payload.get("killParent"):
    append(f"K {ppid}")
    time.sleep(30)  # the launcher kills us with the replica
time.sleep(payload.get("sleepMs", 0) / 1000)
append(f"E {head} {start} {time.monotonic_ns()} {pid} {ppid}")
print(json.dumps({"result": {"pid": pid}}), flush=True)
