"""A real HTTP receiver for the alerts tests: records every POST, answers with scripted statuses."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: Any
    at: datetime


@dataclass
class Receiver:
    """What the server got; `statuses` are answered in turn, then 200."""

    url: str = ""
    statuses: list[int] = field(default_factory=list)
    requests: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def bodies(self) -> list[Any]:
        with self.lock:
            return [r.body for r in self.requests]

    def wait_for(self, check: Callable[[list[Received]], bool], seconds: float) -> list[Received]:
        """Poll until `check(requests)` holds; AssertionError at the deadline."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with self.lock:
                got = list(self.requests)
            if check(got):
                return got
            time.sleep(0.05)
        raise AssertionError(f"receiver: condition not met in {seconds}s; got {self.bodies()}")


@contextmanager
def http_receiver(statuses: list[int] | None = None) -> Iterator[Receiver]:
    receiver = Receiver(statuses=list(statuses or []))

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length)
            with receiver.lock:
                receiver.requests.append(
                    Received(self.path, dict(self.headers), json.loads(raw), datetime.now(UTC))
                )
                status = receiver.statuses.pop(0) if receiver.statuses else 200
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"ok" if status < 400 else b"receiver says no")

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
