"""hello: the smallest useful bot — reads the envelope, returns a greeting (used by benchmarks).

Payload: anything (ignored).
Result:  {"hello": "python", "jobId": ...}
"""

import json
import sys

envelope = json.load(sys.stdin)
print(json.dumps({"result": {"hello": "python", "jobId": envelope["jobId"]}}), flush=True)
