"""One-way imports: the webhook layer never pulls in Redis (STYLE habit 9)."""

from __future__ import annotations

import subprocess
import sys

MODULES = [
    "botsys.webhooks",
    "botsys.webhooks.types",
    "botsys.webhooks.signing",
    "botsys.webhooks.guard",
    "botsys.webhooks.policy",
    "botsys.webhooks.sender",
    "botsys.webhooks.dispatcher",
    "botsys.mock_webhook",
]


def test_webhooks_do_not_import_redis():
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in MODULES)
        + "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('redis', 'fakeredis'))\n"
        + "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_pure_modules_do_not_import_aiohttp():
    code = (
        "import sys\nimport botsys.webhooks.policy, botsys.webhooks.signing, botsys.webhooks.types\n"
        "assert 'aiohttp' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
