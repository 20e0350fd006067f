"""The nginx load balancer config, checked by the real `nginx -t`.

nginx resolves names at test time; the compose names exist only inside the compose network.
The test runs in a private mount namespace with its own /etc/hosts bound over the real one,
so the machine's /etc/hosts is never touched.
"""

from __future__ import annotations

import re
from pathlib import Path

from .deploytools import OBS, ROOT, assert_ok, run, tool

CONF = OBS / "nginx" / "nginx.conf"
HOSTS = "127.0.0.1 localhost botsys redis prometheus loki grafana alloy mock-webhook nginx\n"


def test_nginx_t_accepts_the_config(tmp_path: Path) -> None:
    nginx, unshare = tool("nginx"), tool("unshare")
    hosts = tmp_path / "hosts"
    hosts.write_text(HOSTS)
    before = Path("/etc/hosts").read_text()
    script = (
        f"mount --bind {hosts} /etc/hosts && "
        f"exec {nginx} -t -q -c {CONF} -p {tmp_path}/ -e stderr -g 'pid {tmp_path}/nginx.pid;'"
    )
    proc = run([unshare, "-m", "sh", "-c", script])
    assert_ok(proc)
    assert Path("/etc/hosts").read_text() == before


def test_lb_settings() -> None:
    text = CONF.read_text()
    assert "resolver 127.0.0.11" in text
    assert "client_max_body_size 1m;" in text  # = server.max_body_bytes (1048576)
    assert "X-Forwarded-For $proxy_add_x_forwarded_for" in text
    sse = re.search(r"location ~ \^/job/\[\^/\]\+/events\$ \{(.*?)\}", text, re.S)
    assert sse and "proxy_buffering off;" in sse.group(1)
    config = (ROOT / "botsys" / "defaults.toml").read_text()
    assert re.search(r"^max_body_bytes = 1048576\b", config, re.M)
