"""Request latency into the metrics, as plain ASGI middleware (no per-request task or stream)."""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from weatherpipe.metrics import Metrics


class RequestTimer:
    """Record each HTTP request's latency under its route template (never the raw path).

    Plain ASGI instead of Starlette's BaseHTTPMiddleware (`app.middleware("http")`): that one
    runs every request in a task group and copies the body through a memory stream, which
    under load cost more than a small endpoint itself (docs/performance.md, "The API under
    load").
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app raises before it answers

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            # The router leaves the matched route in the (shared) scope.
            template = getattr(scope.get("route"), "path", None) or "unmatched"
            self.metrics.observe_request(
                template, scope["method"], status, time.perf_counter() - started
            )
