"""Webhook receivers for the fault tests, in threads of the test process: a recording receiver
that can be stopped and started again on the same port, and a black hole that accepts TCP
connections and never answers."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.support.redis_server import free_port


@dataclass(frozen=True)
class Received:
    webhook_id: str
    job_id: str
    state: str
    received_ms: float  # wall clock (the job's finishedAt is Redis wall time on the same host)


class Receiver:
    """Records every webhook (unbounded, unlike the mock's ring buffer) and answers 200."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.received: list[Received] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def reserve(self) -> Receiver:
        """Bind the port without listening: connections are refused (the receiver is down)
        and no other process can take the port before ``start``."""
        if self._server is None:
            self._server = ThreadingHTTPServer(
                ("127.0.0.1", self.port), self._handler(), bind_and_activate=False
            )
            self._server.allow_reuse_address = True
            self._server.server_bind()
        return self

    def start(self) -> Receiver:
        self.reserve()
        assert self._server is not None
        self._server.server_activate()
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = json.loads(raw or b"{}")
                rec = Received(
                    self.headers.get("webhook-id", ""),
                    body.get("jobId", ""),
                    body.get("state", ""),
                    time.time() * 1000,
                )
                with owner._lock:
                    owner.received.append(rec)
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args) -> None:
                pass

        return Handler

    def stop(self) -> None:
        if self._server is not None:
            if self._thread is not None:
                self._server.shutdown()
                self._thread = None
            self._server.server_close()
            self._server = None

    def by_job(self) -> dict[str, list[Received]]:
        out: dict[str, list[Received]] = defaultdict(list)
        with self._lock:
            for r in self.received:
                out[r.job_id].append(r)
        return dict(out)


class BlackHole:
    """A loopback listener that accepts connections and never reads or answers."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(512)
        self.port = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accept() call
        self.sock.close()
        for conn in self.accepted:
            conn.close()
