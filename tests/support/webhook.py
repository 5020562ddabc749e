"""A webhook receiver on 127.0.0.1: a real HTTP server that keeps every request it is sent.

What Apprise's ``json://HOST:PORT/PATH`` channel posts arrives here as a JSON body with
``title``, ``message`` and ``type``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    """One request the receiver took."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]


class WebhookReceiver:
    """The server's address and what it received so far."""

    def __init__(self, server: ThreadingHTTPServer, status: int) -> None:
        self._server = server
        self.status = status
        self.requests: list[Received] = []
        self._lock = threading.Lock()

    @property
    def port(self) -> int:
        port: int = self._server.server_address[1]
        return port

    def url(self, path: str = "hook", scheme: str = "json") -> str:
        """An Apprise URL that posts here."""
        return f"{scheme}://127.0.0.1:{self.port}/{path}"

    def take(self, request: Received) -> None:
        with self._lock:
            self.requests.append(request)

    def received(self) -> list[Received]:
        with self._lock:
            return list(self.requests)

    def wait_for(self, text: str, timeout_s: float = 60.0) -> Received:
        """The first request whose message contains ``text``, waiting up to ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for request in self.received():
                if text in str(request.body.get("message", "")):
                    return request
            time.sleep(0.1)
        raise AssertionError(f"no webhook with {text!r} within {timeout_s} s: {self.received()}")


@contextmanager
def webhook_receiver(status: int = 200) -> Iterator[WebhookReceiver]:
    """A receiver on a free port of 127.0.0.1 answering every POST with ``status``."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                body = {"raw": raw.decode("utf-8", "replace")}
            receiver.take(Received(self.path, dict(self.headers.items()), body))
            self.send_response(receiver.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver = WebhookReceiver(server, status)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
