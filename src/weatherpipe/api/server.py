"""Serving the API: a socket bound up front (a taken port is a start-up error) and uvicorn."""

from __future__ import annotations

import socket
import threading
from types import FrameType
from typing import Any

import uvicorn

from weatherpipe.errors import ConfigError

# Seconds a stopping server waits for open responses before it cancels them: a dashboard's
# event stream (GET /api/v1/events) never ends by itself, and uvicorn would wait for it forever.
SHUTDOWN_GRACE = 2


class StageServer(uvicorn.Server):
    """uvicorn that ends with exit status 0 after SIGTERM or Ctrl-C, like every other stage.

    uvicorn re-raises the signal once it has shut down, so a supervisor would see a death by
    SIGTERM where there was a clean stop.
    """

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        self._captured_signals.clear()


def listen_socket(host: str, port: int) -> socket.socket:
    """A socket listening on host:port, or one ConfigError naming the setting (port taken).

    Binding before uvicorn starts turns "address in use" into a start-up failure instead of a
    log line from a server thread while the rest of the process carries on.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP spelled out: asyncio sets TCP_NODELAY on accepted connections only when the
    # listening socket says TCP, and without it every keep-alive response waits ~40 ms for
    # the client's delayed ACK (Nagle).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"WEATHERPIPE_API_PORT: cannot listen on {host}:{port}: {exc.strerror or exc}"
        ) from None
    sock.set_inheritable(True)
    return sock


class ApiServer:
    """uvicorn in a thread of its own, so its signal handling stays out of our loop."""

    def __init__(
        self, app: Any, host: str = "", port: int = 0, sock: socket.socket | None = None
    ) -> None:
        self.socket = sock or listen_socket(host, port)
        config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=SHUTDOWN_GRACE)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.socket]}, name="api", daemon=True
        )

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
