"""The JSON endpoints under /api/v1 and the health checks."""

from __future__ import annotations

import asyncio
import calendar
import contextlib
from collections.abc import Callable, Hashable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from weatherpipe import export
from weatherpipe.api.answers import AnswerCache, json_body, tidy
from weatherpipe.api.marks import grouped
from weatherpipe.api.schemas import (
    Device,
    DeviceAnomalies,
    DeviceCount,
    DeviceMax,
    Health,
    Problem,
    ReadingOut,
    ReadingsPage,
    Series,
)
from weatherpipe.errors import InvalidParameter, NotFound, WeatherpipeError
from weatherpipe.metrics import CONTENT_TYPE, Metrics
from weatherpipe.storage.repository import Repository

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "A token is configured and the request lacks it."},
    422: {"model": Problem, "description": "A parameter is missing or invalid."},
    503: {"model": Problem, "description": "The database is unreachable."},
}
router = APIRouter(responses=ERRORS)
# reading.DEVICE_ID (a canonical UUID or a readable id); a query's upper case is lowered.
DEVICE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
DeviceId = Annotated[
    str, Query(pattern=DEVICE_ID_PATTERN, description="A device id (a UUID or a readable id).")
]
# Every database weatherpipe supports stores these years (MySQL's DATETIME starts at 1000).
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 1, 1, tzinfo=UTC)
# Most points a series answer may hold per resolution, as a time span.
RAW_SPAN, MINUTE_SPAN, HOUR_SPAN = timedelta(hours=6), timedelta(days=8), timedelta(days=400)
# `auto` keeps a chart under ~1,800 points and each answer cheap: raw up to 30 minutes, minute
# rollups up to 6 hours, hours (folded from at most 4,320 minute rows in SQL) up to 3 days, daily
# rollups beyond.
# Flagged readings a series answer reads: each one a mark at raw resolution; at longer ones
# grouped into a mark per bucket, so more can be read.
MARKS, GROUPED_MARKS = 500, 20_000
Resolution = Literal["auto", "raw", "minute", "hour", "day"]
AUTO: tuple[tuple[timedelta, Resolution], ...] = (
    (timedelta(minutes=30), "raw"),
    (timedelta(hours=6), "minute"),
    (timedelta(days=3), "hour"),
)


def repo_of(request: Request) -> Repository:
    repo: Repository = request.app.state.repo
    return repo


def fast_json(data: Any) -> Response:
    """Serialise an answer with orjson, past FastAPI's per-object validation.

    The shape is the declared response_model's (the schemathesis suite checks every answer
    against the OpenAPI schema); at thousands of points this is ~10x faster.
    """
    return Response(json_body(data), media_type="application/json")


async def shared(request: Request, key: Hashable, rows: Callable[[], list[Any]]) -> Response:
    """A fleet-wide answer from the app's AnswerCache (api/answers.py): `rows` runs in the
    thread pool at most once per key and WEATHERPIPE_API_CACHE_SECONDS, for every caller."""
    answers: AnswerCache = request.app.state.answers
    body = await answers.get(key, lambda: json_body(tidy(rows())))
    return Response(body, media_type="application/json")


def named(repo: Repository, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each analysis row with its device's name from the registry (null where it has none)."""
    names = repo.device_names([row["device_id"] for row in rows]) if rows else {}
    return [{"device_id": r["device_id"], "name": names.get(r["device_id"]), **r} for r in rows]


def utc(name: str, value: datetime | None) -> datetime | None:
    """An RFC 3339 time as aware UTC, or a 422 naming the parameter."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise InvalidParameter(f"{name} must carry a UTC offset (RFC 3339), e.g. ...Z")
    try:
        value = value.astimezone(UTC)
    except (OverflowError, ValueError):
        raise InvalidParameter(f"{name} is out of range") from None
    if not EARLIEST <= value < LATEST:
        raise InvalidParameter(f"{name} must lie between 1970 and 9999")
    return value


@router.get("/api/v1/devices", response_model=list[Device], tags=["analyses"])
async def list_devices(request: Request) -> Response:
    """Every device with its location, reading count, last reading and detection state."""
    repo, detector = repo_of(request), request.app.state.settings.detector
    return await shared(request, ("devices", detector), lambda: repo.devices(detector))


@router.get("/api/v1/stats/max-temperature", response_model=list[DeviceMax], tags=["analyses"])
async def max_temperature(request: Request) -> Response:
    """Maximum temperature per device (the original `devicemax.sql`)."""
    repo = repo_of(request)
    return await shared(request, "devicemax", lambda: named(repo, repo.analysis("devicemax")))


@router.get("/api/v1/stats/counts", response_model=list[DeviceCount], tags=["analyses"])
async def counts(request: Request) -> Response:
    """Readings stored per device (the original `devicedata.sql`)."""
    repo = repo_of(request)
    return await shared(request, "devicedata", lambda: named(repo, repo.analysis("devicedata")))


@router.get("/api/v1/stats/daily-max", response_model=list[DeviceMax], tags=["analyses"])
async def daily_max(
    request: Request,
    day: Annotated[int, Query(ge=1, le=31, description="Day of the month (UTC).")],
    month: Annotated[int, Query(ge=1, le=12, description="Month, 1-12.")],
    year: Annotated[int | None, Query(ge=1970, le=9999, description="Only this year.")] = None,
) -> Response:
    """Maximum temperature per device on a day and month (the original `daymax.sql`);
    an empty list when there is no data."""
    last_day = calendar.monthrange(year or 2000, month)[1]  # 2000 is a leap year
    if day > last_day:
        raise InvalidParameter(f"day {day} does not exist in month {month}")
    repo = repo_of(request)
    return await shared(
        request,
        ("daymax", day, month, year),
        lambda: named(repo, repo.analysis("daymax", day=day, month=month, year=year)),
    )


@router.get("/api/v1/anomalies", response_model=list[DeviceAnomalies], tags=["analyses"])
async def anomalies(
    request: Request,
    minutes: Annotated[
        int, Query(ge=1, le=527_040, description="Look back this many minutes.")
    ] = 30,
    device_id: DeviceId | None = None,
) -> Response:
    """Anomalies per device in the last N minutes (the original `deviceanomalies.sql`),
    with the anomalous readings themselves."""
    repo, device = repo_of(request), device_id.lower() if device_id else None
    return await shared(
        request,
        ("anomalies", minutes, device),
        lambda: named(repo, anomalies_per_device(repo, minutes, device)),
    )


def anomalies_per_device(
    repo: Repository, minutes: int, device_id: str | None
) -> list[dict[str, Any]]:
    """Each device's count of flagged readings in the last `minutes`, with the readings."""
    since = datetime.now(UTC) - timedelta(minutes=minutes)
    flagged: dict[str, list[dict[str, Any]]] = {}
    for reading in repo.anomalous_readings(since, device_id):
        del reading["id"]
        flagged.setdefault(reading["device_id"], []).append(reading)
    answer = []
    for row in repo.analysis("deviceanomalies", since=since):
        if device_id is not None and row["device_id"] != device_id:
            continue
        row["readings"] = flagged.get(row["device_id"], [])
        answer.append(row)
    return answer


@router.get(
    "/api/v1/readings",
    response_model=ReadingsPage,
    tags=["readings"],
    responses={404: {"model": Problem, "description": "No such device."}},
)
async def readings(
    request: Request,
    device_id: DeviceId,
    start: Annotated[datetime | None, Query(description="RFC 3339, inclusive.")] = None,
    end: Annotated[datetime | None, Query(description="RFC 3339, exclusive.")] = None,
    after: Annotated[datetime | None, Query(description="Page cursor: `next_after`.")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> Response:
    """A device's readings in time order, with anomaly flags, one page at a time.

    Paging is by key: pass the answer's `next_after` as `after` for the next page."""
    start, end, after = utc("start", start), utc("end", end), utc("after", after)
    repo, device = repo_of(request), device_id.lower()

    def page() -> bytes:
        items = repo.readings_page(device, start, end, limit, after)
        if not items and after is None and device not in repo.device_ids():
            raise NotFound(f"no device {device_id}")
        for item in items:
            del item["id"]
        next_after = items[-1]["ts"] if len(items) == limit else None
        return json_body({"items": tidy(items), "next_after": next_after})

    answers: AnswerCache = request.app.state.answers
    return Response(await answers.run(page), media_type="application/json")


@router.get(
    "/api/v1/readings/export",
    tags=["readings"],
    response_class=StreamingResponse,
    responses={
        200: {"content": {t: {} for t in export.MEDIA_TYPES.values()}, "description": "The file."},
        404: {"model": Problem, "description": "No such device."},
        501: {"model": Problem, "description": "format=parquet without pyarrow installed."},
    },
)
def export_readings(
    request: Request,
    format_: Annotated[export.Format, Query(alias="format", description="csv or parquet.")] = "csv",
    device_id: DeviceId | None = None,
    start: Annotated[datetime | None, Query(description="RFC 3339, inclusive.")] = None,
    end: Annotated[datetime | None, Query(description="RFC 3339, exclusive.")] = None,
) -> StreamingResponse:
    """Readings (every device, or one) from `start` to `end`, streamed as CSV or Parquet in
    (device_id, ts) order, read a chunk at a time: any range, in flat memory."""
    start, end = utc("start", start), utc("end", end)
    if start is not None and end is not None and start >= end:
        raise InvalidParameter("start must be before end")
    repo = repo_of(request)
    device = device_id.lower() if device_id is not None else None
    if device is not None and device not in repo.device_ids():
        raise NotFound(f"no device {device_id}")
    body = export.encode(repo.export_chunks(device, start, end), format_)
    name = f"readings{'-' + device if device else ''}.{format_}"
    return StreamingResponse(
        body,
        media_type=export.MEDIA_TYPES[format_],
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get("/api/v1/series", response_model=Series, tags=["readings"])
def series(
    request: Request,
    device_id: DeviceId,
    start: Annotated[
        datetime | None, Query(description="RFC 3339; default one hour before `end`.")
    ] = None,
    end: Annotated[datetime | None, Query(description="RFC 3339; default now.")] = None,
    resolution: Annotated[
        Resolution,
        Query(
            description="raw readings (up to 6 h), minute rollups (up to 8 days), hours "
            "(up to 400 days), daily rollups, or auto: raw up to 30 min, minutes up to 6 h, "
            "hours up to 3 days, days beyond."
        ),
    ] = "auto",
) -> Response:
    """A device's temperature over a time range for charts, with its anomalies."""
    end = utc("end", end) or datetime.now(UTC)
    start = utc("start", start) or end - timedelta(hours=1)
    if start >= end:
        raise InvalidParameter("start must be before end")
    span = end - start
    if resolution == "auto":
        resolution = next((name for limit, name in AUTO if span <= limit), "day")
    if resolution == "raw" and span > RAW_SPAN:
        raise InvalidParameter("resolution=raw covers at most 6 hours; use minute, hour or day")
    if resolution == "minute" and span > MINUTE_SPAN:
        raise InvalidParameter("resolution=minute covers at most 8 days; use hour or day")
    if resolution == "hour" and span > HOUR_SPAN:
        raise InvalidParameter("resolution=hour covers at most 400 days; use day")
    device = device_id.lower()
    limit = MARKS if resolution == "raw" else GROUPED_MARKS
    points, marks = repo_of(request).chart(device, start, end, resolution, limit)
    return fast_json(
        {
            "device_id": device,
            "resolution": resolution,
            "start": start,
            "end": end,
            "points": tidy(points),
            "anomalies": tidy(grouped(marks, resolution)),
        }
    )


@router.get("/healthz", response_model=Health, tags=["health"])
async def healthz() -> dict[str, Any]:
    """The process is alive."""
    return {"status": "ok"}


@router.get("/readyz", response_model=Health, tags=["health"])
async def readyz(request: Request) -> JSONResponse:
    """Ready when the database and the bus both answer."""
    checks: dict[str, str] = {}
    try:
        repo_of(request).ping()
        checks["database"] = "ok"
    except WeatherpipeError as exc:
        checks["database"] = str(exc)
    bus = request.app.state.bus
    if bus is not None:
        try:
            # A standalone API opens its bus lazily, and again after the broker was away:
            # connect() does nothing when already connected.
            await bus.connect()
            await bus.ping()
            checks["bus"] = "ok"
        except WeatherpipeError as exc:
            checks["bus"] = str(exc)
    ok = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ok" if ok else "unavailable", "checks": checks}, status_code=200 if ok else 503
    )


@router.get(
    "/metrics",
    tags=["health"],
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE: {}}, "description": "Prometheus text format."}},
)
async def metrics(request: Request) -> Response:
    """Prometheus metrics: ingest rate and batch latency (when ingest shares this process),
    bus lag, the database's stored readings, anomalies and dead letters, API latency."""
    collected: Metrics = request.app.state.metrics
    bus = request.app.state.bus
    if bus is not None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(collected.sample_lag(bus), 2.0)
    body = await asyncio.to_thread(collected.exposition)
    return Response(body, media_type=CONTENT_TYPE)


__all__ = ["ReadingOut", "router"]
