"""The fleet overview's data: one page of devices with the fleet's totals and the pipeline's
health, answered once (GET /api/v1/fleet) or pushed as server-sent events (GET /api/v1/events)."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse

from weatherpipe.api.answers import AnswerCache, json_body, tidy
from weatherpipe.api.routes import ERRORS
from weatherpipe.api.schemas import FleetPage
from weatherpipe.health import HealthSampler
from weatherpipe.storage.fleet import FleetQuery, FleetReads, Order, Sort

router = APIRouter(responses=ERRORS, tags=["fleet"])
MAX_PER_PAGE = 500
# How often an event stream sends, unless the client asks otherwise.
EVERY = 5.0

Page = Annotated[int, Query(ge=1, le=1_000_000, description="Page number, from 1.")]
PerPage = Annotated[int, Query(ge=1, le=MAX_PER_PAGE, description="Devices per page.")]
Search = Annotated[
    str,
    Query(max_length=100, description="Only devices whose name or id contains this (any case)."),
]
SortBy = Annotated[
    Sort,
    Query(
        description="name (registry name, else id), last_seen (newest reading), anomalies "
        "(flagged readings in the last 30 minutes, then 24 hours) or silence (time since the "
        "newest reading). Devices that never sent come last."
    ),
]
OrderBy = Annotated[Order, Query(description="asc or desc.")]


def sampler_of(request: Request) -> HealthSampler:
    """The app's one health sampler, made on first use (every page shares its samples)."""
    state = request.app.state
    sampler: HealthSampler | None = getattr(state, "health", None)
    if sampler is None:
        sampler = HealthSampler(state.repo, state.settings.detector, state.metrics, state.bus)
        state.health = sampler
    return sampler


async def fleet_answer(request: Request, query: FleetQuery) -> dict[str, Any]:
    """The page, the totals and the health, as GET /api/v1/fleet answers them (the totals and
    the health from the app's sampler: at most a few seconds old, shared by every caller)."""
    repo: FleetReads = request.app.state.repo
    now = datetime.now(UTC)
    sample = await sampler_of(request).current()
    found = await asyncio.to_thread(repo.fleet_page, query, now)
    return {
        "generated_at": now,
        "page": query.page,
        "per_page": query.per_page,
        "pages": max(1, math.ceil(found["total"] / query.per_page)),
        "total": found["total"],
        "q": query.q,
        "sort": query.sort,
        "order": query.order,
        "devices": found["devices"],
        "fleet": sample["fleet"],
        "health": sample["health"],
    }


def fleet_query(
    request: Request, page: int, per_page: int, q: str, sort: Sort, order: Order
) -> FleetQuery:
    return FleetQuery(page, per_page, q.strip(), sort, order, request.app.state.settings.detector)


@router.get("/api/v1/fleet", response_model=FleetPage)
async def fleet(
    request: Request,
    page: Page = 1,
    per_page: PerPage = 50,
    q: Search = "",
    sort: SortBy = "name",
    order: OrderBy = "asc",
) -> Response:
    """One page of the fleet (searched and sorted on the server) with each device's last
    reading, anomalies in the last 30 minutes and 24 hours (with the worst's kind and
    severity), silence and detection state; the whole fleet's totals; and the pipeline's
    health (ingest rate, consumer lag, dead letters, detection position and warm-up)."""
    query = fleet_query(request, page, per_page, q, sort, order)
    return Response(await shared_page(request, query), media_type="application/json")


async def shared_page(request: Request, query: FleetQuery) -> bytes:
    """The answer as JSON. Every open dashboard asks for the same first page: one query per
    second for all of them, requests and event streams alike (api/answers.py;
    WEATHERPIPE_API_CACHE_SECONDS)."""
    answers: AnswerCache = request.app.state.answers

    async def produce() -> bytes:
        return json_body(tidy_page(await fleet_answer(request, query)))

    return await answers.share(("fleet", query), produce)


def tidy_page(answer: dict[str, Any]) -> dict[str, Any]:
    tidy(answer["devices"])
    return answer


# Out of the OpenAPI schema: a stream that never ends is no operation a schema tester (or
# Swagger's "try it out") can call; docs/api.md describes it.
@router.get("/api/v1/events", response_class=StreamingResponse, include_in_schema=False)
async def events(
    request: Request,
    page: Page = 1,
    per_page: PerPage = 50,
    q: Search = "",
    sort: SortBy = "name",
    order: OrderBy = "asc",
    every: Annotated[float, Query(ge=0.5, le=300, description="Seconds between events.")] = EVERY,
) -> StreamingResponse:
    """Server-sent events: a `fleet` event at once and then every `every` seconds, each
    carrying what GET /api/v1/fleet answers for the same parameters. One stream keeps a whole
    dashboard live."""
    query = fleet_query(request, page, per_page, q, sort, order)
    return StreamingResponse(
        _stream(request, query, every),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _stream(request: Request, query: FleetQuery, every: float) -> AsyncIterator[bytes]:
    # A client that lost the stream reconnects after this long (EventSource does it alone).
    yield f"retry: {int(every * 1000)}\n\n".encode()
    sent = 0
    while not await request.is_disconnected():
        data = await shared_page(request, query)
        sent += 1
        yield b"event: fleet\nid: %d\ndata: %s\n\n" % (sent, data)
        await asyncio.sleep(every)
