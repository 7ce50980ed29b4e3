"""HTTP ingestion: POST /api/v1/telemetry takes one reading or a batch from real devices.

The readings go through the bus path's own decoder, registry admission and batch writer; the
answer (202) comes only after their transaction has committed, so a reading acknowledged is
stored, and a retry of the same (device_id, ts) is counted as a duplicate, never stored twice.
Requests in flight at the same time share a transaction (group commit, ingest/group.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hmac
import math
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from weatherpipe.api import lineprotocol
from weatherpipe.api.lineprotocol import LineError
from weatherpipe.api.login import presented_token
from weatherpipe.api.ratelimit import RateLimiter
from weatherpipe.bus.base import Message
from weatherpipe.config import Settings
from weatherpipe.errors import (
    BadRequest,
    DecodeError,
    PayloadTooLarge,
    StorageUnavailable,
    TooManyRequests,
    Unauthorized,
)
from weatherpipe.ingest.admission import Admission
from weatherpipe.ingest.group import GroupWriter
from weatherpipe.ingest.lean import complete_item
from weatherpipe.ingest.worker import IngestWorker
from weatherpipe.provision import token_hash
from weatherpipe.reading import MAX_MESSAGE_BYTES, Window, decode_many
from weatherpipe.storage.repository import Repository

PATH = "/api/v1/telemetry"
TOKEN_HEADER = "x-device-token"
INDEX = "index"  # the attribute that carries a reading's place in its request
REFUSED = "refused"  # set only by this module, on a line protocol line that is no reading
# How long a request waits for a database that is down before answering 503.
STORE_SECONDS = 10.0
TOKEN_CACHE_SECONDS = 2.0
MISS_REFRESH_SECONDS = 0.2

router = APIRouter(tags=["devices"])


class Intake:
    """What the endpoint holds between requests: the writer, the rate limits, token lookups."""

    def __init__(
        self,
        repo: Repository,
        api_token: str | None,
        window: Window,
        limiter: RateLimiter,
        max_bytes: int,
    ) -> None:
        self.repo = repo
        self.api_token = api_token
        self.limiter = limiter
        self.max_bytes = max_bytes
        self.admission = Admission(repo)
        self.writer = IngestWorker(
            None,
            repo,
            decoder=functools.partial(decode_many, window=window),
            admission=self.admission,
            verifier=_verdict,
        )
        self.group = GroupWriter(self.writer)
        self._tokens: dict[str, tuple[tuple[str, bool] | None, float]] = {}

    @classmethod
    def from_settings(cls, settings: Settings, repo: Repository) -> Intake:
        token = settings.api_token.get_secret_value() if settings.api_token else None
        window = Window(settings.oldest_ts, timedelta(seconds=settings.max_clock_ahead))
        limiter = RateLimiter(settings.telemetry_rate, settings.telemetry_burst)
        return cls(repo, token, window, limiter, settings.telemetry_max_bytes)

    async def device_of(self, token: str) -> tuple[str, bool] | None:
        """(device id, enabled) of a device token, cached for a moment."""
        digest = token_hash(token)
        cached = self._tokens.get(digest)
        if cached is not None and time.monotonic() - cached[1] < TOKEN_CACHE_SECONDS:
            return cached[0]
        found = await asyncio.to_thread(self.repo.device_of_token, digest)
        if len(self._tokens) > 10_000:
            self._tokens.clear()
        self._tokens[digest] = (found, time.monotonic())
        return found


@router.post(
    PATH,
    status_code=202,
    responses={
        400: {"description": "The body is not JSON, or no reading in it is valid."},
        401: {"description": "A missing or wrong device token."},
        413: {"description": "The body is over the size limit."},
        429: {"description": "The device is over its rate; see Retry-After."},
        503: {"description": "The database is down: nothing was stored, send again."},
    },
)
async def telemetry(request: Request) -> JSONResponse:
    """One reading (a JSON object) or a batch (a JSON array), or InfluxDB line protocol with
    Content-Type text/plain (Telegraf's `influx` format). Lean form: `{"device_id":
    "greenhouse-01", "temperature": 21.4}`, optionally with `ts` (default: the time received),
    `seq`, `latitude`+`longitude` (default: the registered place). Send the device's token as
    `Authorization: Bearer TOKEN` or `X-Device-Token: TOKEN`. See docs/devices.md."""
    intake: Intake = request.app.state.telemetry
    received = datetime.now(UTC)
    body = await _body(request, intake.max_bytes)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type in lineprotocol.CONTENT_TYPES:
        parsed = lineprotocol.items(body)
        if not parsed:
            raise BadRequest("the body holds no line")
        items: list[Any] = [{} if isinstance(p, LineError) else p for p in parsed]
    else:
        items = parsed = _items(body)
    device = await _authenticate(request, intake, items)
    await _know_new_devices(intake, items, device)
    messages = [
        _refused(p, i) if isinstance(p, LineError) else _message(p, i, device, received)
        for i, p in enumerate(parsed)
    ]
    # Each dead letter's key: this request and the item's place in it (ingest/refusals.py).
    request_id = uuid.uuid4().hex
    for i, m in enumerate(messages):
        m.id = f"http:{request_id}:{i}"
    costs = Counter(m.attributes.get("device", "") for m in messages)
    wait = intake.limiter.take(costs)
    if wait == math.inf:  # waiting would never help: say so instead of a Retry-After
        raise PayloadTooLarge(
            f"a batch of {max(costs.values())} readings for one device is over its burst of "
            f"{intake.limiter.burst:g} (WEATHERPIPE_TELEMETRY_BURST): send smaller batches"
        )
    if wait:
        raise TooManyRequests(
            f"over the rate of {intake.limiter.rate:g} readings/s per device "
            f"(bursts up to {intake.limiter.burst:g}, counted by this API process); retry later",
            retry_after=wait,
        )
    stored = await intake.group.store(messages, STORE_SECONDS)
    batch, result = stored.batch, stored.result
    if result is None:
        raise StorageUnavailable("database unavailable: nothing was stored; send again")
    refused = sorted((int((d.attributes or {}).get(INDEX, -1)), d.reason) for d in batch.dead)
    answer: dict[str, Any] = {
        "accepted": len(batch.readings),
        "stored": result.stored,
        "duplicates": result.duplicates,
        "dead_lettered": len(refused),
        "refused": [{"index": i, "reason": reason} for i, reason in refused],
    }
    if not batch.readings:
        detail = refused[0][1] if len(refused) == 1 else "no reading in the batch is valid"
        return JSONResponse({"detail": detail, **answer}, status_code=400)
    return JSONResponse(answer, status_code=202)


async def _body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"body of {int(declared):,} bytes is over the {limit:,}-byte limit")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"body is over the {limit:,}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


def _items(body: bytes) -> list[Any]:
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the body is not valid UTF-8 JSON: {exc}") from None
    items = parsed if isinstance(parsed, list) else [parsed]
    if not items:
        raise BadRequest("the batch is empty")
    return items


async def _authenticate(request: Request, intake: Intake, items: list[Any]) -> str | None:
    """The device the token belongs to (None: the API token, or no token on an open server,
    both of which may post for any device without a token of its own)."""
    token = request.headers.get(TOKEN_HEADER) or presented_token(request)
    if (
        token
        and intake.api_token
        and hmac.compare_digest(token.encode(), intake.api_token.encode())
    ):
        return None
    if token:
        found = await intake.device_of(token)
        if found is None:
            raise Unauthorized("unknown device token")
        device = found[0]
        if intake.admission.entry(device) is None:  # provisioned since the last snapshot
            await asyncio.to_thread(intake.admission.refresh)
        for item in items:
            named = item.get("device_id", device) if isinstance(item, dict) else device
            if named != device:
                raise Unauthorized(
                    f"the token is device {device!r}'s; a reading names {str(named)[:64]!r}"
                )
        return device
    if intake.api_token:
        raise Unauthorized(
            "missing token: send Authorization: Bearer DEVICE_TOKEN (or X-Device-Token)"
        )
    if intake.admission.stale:
        with contextlib.suppress(StorageUnavailable):
            await asyncio.to_thread(intake.admission.refresh)
    for item in items:
        named = item.get("device_id") if isinstance(item, dict) else None
        entry = intake.admission.entry(named) if isinstance(named, str) else None
        if entry is not None and entry.has_token:
            raise Unauthorized(f"device {named!r} has a token: send it")
    return None


async def _know_new_devices(intake: Intake, items: list[Any], device: str | None) -> None:
    """Read the registry again when a reading without a place names a device the snapshot
    does not know: it may have been provisioned just now."""
    named = {
        item.get("device_id", device)
        for item in items
        if isinstance(item, dict) and "latitude" not in item
    }
    if any(isinstance(d, str) and intake.admission.entry(d) is None for d in named):
        # Not sooner than MISS_REFRESH_SECONDS after the last: unknown devices cannot make
        # the API read the registry in a loop.
        await asyncio.sleep(max(0.0, MISS_REFRESH_SECONDS - intake.admission.age))
        await asyncio.to_thread(intake.admission.refresh)


def _refused(error: LineError, index: int) -> Message:
    """A line that is no reading: a dead letter with the parser's reason (see `_verdict`)."""
    attributes = {INDEX: str(index), "via": "http", REFUSED: str(error)}
    return Message(error.line.encode("utf-8", "surrogateescape"), attributes)


def _verdict(message: Message) -> str | None:
    """The IngestWorker verifier of the HTTP path: only lines the parser refused."""
    return message.attributes.get(REFUSED)


def _message(item: Any, index: int, device: str | None, received: datetime) -> Message:
    """A reading in the wire's full form (schema v1), as the bus would carry it."""
    try:
        item = complete_item(item, device, received)
    except DecodeError:
        raise Unauthorized(
            f"the token is device {device!r}'s; a reading names {str(item.get('device_id'))[:64]!r}"
        ) from None
    try:
        data = orjson.dumps(item)
    except orjson.JSONEncodeError:
        data = b"null"
    named = item.get("device_id") if isinstance(item, dict) else None
    attributes = {INDEX: str(index), "via": "http"}
    if isinstance(named, str) and len(data) <= MAX_MESSAGE_BYTES:
        attributes["device"] = named[:64]
    return Message(data, attributes)
