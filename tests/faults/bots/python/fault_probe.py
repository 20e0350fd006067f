"""Fault-suite probe: logs its own start and end (CLOCK_MONOTONIC) to the file in the payload.

Lines (appended, one write each): ``S type job attempt start_ns pid ppid`` when it starts and
``E type job attempt start_ns end_ns pid ppid`` when it ends normally. A probe killed mid-run
leaves only its S line. ``ppid`` is the serve replica that started it: the parent, or the
parent of ``botsys-launch`` when that stands between. Payload: ``log`` (path), ``sleepMs``,
``killParent`` (SIGKILL that replica).
"""

import json
import os
import signal
import sys
import time

start = time.monotonic_ns()
envelope = json.load(sys.stdin)
payload = envelope.get("payload") or {}
head = f"python {envelope['jobId']} {envelope['attempt']}"


def server_pid() -> int:
    parent = os.getppid()
    try:
        with open(f"/proc/{parent}/comm") as comm:
            if comm.read().startswith("botsys-launch"):
                with open(f"/proc/{parent}/stat") as stat:
                    return int(stat.read().rsplit(")", 1)[1].split()[1])
    except OSError:
        pass
    return parent


pid, ppid = os.getpid(), server_pid()


def append(line: str) -> None:
    fd = os.open(payload["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


append(f"S {head} {start} {pid} {ppid}")
if payload.get("killParent"):
    os.kill(ppid, signal.SIGKILL)
    time.sleep(30)  # the launcher kills us with the replica
time.sleep(payload.get("sleepMs", 0) / 1000)
append(f"E {head} {start} {time.monotonic_ns()} {pid} {ppid}")
print(json.dumps({"result": {"pid": pid}}), flush=True)
