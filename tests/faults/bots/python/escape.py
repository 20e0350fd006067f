"""Containment probe: starts a setsid grandchild and a double-forked daemon (``sleep <token>``),
waits until both run, says so, then exits (or waits ``holdS`` seconds first). Nothing of it may
remain once the attempt has ended."""

import json
import subprocess
import sys
import time

ESCAPE = (
    'setsid sleep "$1" & (sleep "$1" &); '
    'until [ "$(pgrep -cxf "sleep $1")" -ge 2 ]; do sleep 0.01; done'
)

payload = json.load(sys.stdin)["payload"]
subprocess.run(["sh", "-c", ESCAPE, "escape", payload["sleep"]], check=True)
print(json.dumps({"log": "daemons running"}), flush=True)
time.sleep(payload.get("holdS", 0))
print(json.dumps({"result": {"daemons": 2}}), flush=True)
