"""The JSON endpoints under /api/v1 and the health checks."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from weatherpipe.api.schemas import (
    Device,
    DeviceAnomalies,
    DeviceCount,
    DeviceMax,
    Health,
    ReadingOut,
    ReadingsPage,
)
from weatherpipe.errors import InvalidParameter, NotFound, WeatherpipeError
from weatherpipe.sensors.profiles import KNOWN_NAMES
from weatherpipe.storage.repository import Repository

router = APIRouter()
UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
DeviceId = Annotated[str, Query(pattern=UUID_PATTERN, description="A device UUID.")]


def repo_of(request: Request) -> Repository:
    repo: Repository = request.app.state.repo
    return repo


@router.get("/api/v1/devices", response_model=list[Device], tags=["analyses"])
def list_devices(request: Request) -> list[dict[str, Any]]:
    """Every device with its location, reading count and last reading."""
    devices = repo_of(request).devices()
    for device in devices:
        device["name"] = device["name"] or KNOWN_NAMES.get(device["device_id"])
    return devices


@router.get("/api/v1/stats/max-temperature", response_model=list[DeviceMax], tags=["analyses"])
def max_temperature(request: Request) -> list[dict[str, Any]]:
    """Maximum temperature per device (the original `devicemax.sql`)."""
    return repo_of(request).analysis("devicemax")


@router.get("/api/v1/stats/counts", response_model=list[DeviceCount], tags=["analyses"])
def counts(request: Request) -> list[dict[str, Any]]:
    """Readings stored per device (the original `devicedata.sql`)."""
    return repo_of(request).analysis("devicedata")


@router.get("/api/v1/stats/daily-max", response_model=list[DeviceMax], tags=["analyses"])
def daily_max(
    request: Request,
    day: Annotated[int, Query(ge=1, le=31, description="Day of the month (UTC).")],
    month: Annotated[int, Query(ge=1, le=12, description="Month, 1-12.")],
    year: Annotated[int | None, Query(ge=1970, le=9999, description="Only this year.")] = None,
) -> list[dict[str, Any]]:
    """Maximum temperature per device on a day and month (the original `daymax.sql`);
    an empty list when there is no data."""
    last_day = calendar.monthrange(year or 2000, month)[1]  # 2000 is a leap year
    if day > last_day:
        raise InvalidParameter(f"day {day} does not exist in month {month}")
    return repo_of(request).analysis("daymax", day=day, month=month, year=year)


@router.get("/api/v1/anomalies", response_model=list[DeviceAnomalies], tags=["analyses"])
def anomalies(
    request: Request,
    minutes: Annotated[
        int, Query(ge=1, le=527_040, description="Look back this many minutes.")
    ] = 30,
    device_id: DeviceId | None = None,
) -> list[dict[str, Any]]:
    """Anomalies per device in the last N minutes (the original `deviceanomalies.sql`),
    with the anomalous readings themselves."""
    repo = repo_of(request)
    since = datetime.now(UTC) - timedelta(minutes=minutes)
    rows = repo.anomalous_readings(since, device_id)
    answer = []
    for row in repo.analysis("deviceanomalies", since=since):
        if device_id is not None and row["device_id"] != device_id.lower():
            continue
        row["readings"] = [r for r in rows if r["device_id"] == row["device_id"]]
        answer.append(row)
    return answer


@router.get("/api/v1/readings", response_model=ReadingsPage, tags=["readings"])
def readings(
    request: Request,
    device_id: DeviceId,
    start: Annotated[datetime | None, Query(description="RFC 3339, inclusive.")] = None,
    end: Annotated[datetime | None, Query(description="RFC 3339, exclusive.")] = None,
    after: Annotated[datetime | None, Query(description="Page cursor: `next_after`.")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> dict[str, Any]:
    """A device's readings in time order, with anomaly flags, one page at a time."""
    for name, value in (("start", start), ("end", end), ("after", after)):
        if value is not None and value.tzinfo is None:
            raise InvalidParameter(f"{name} must carry a UTC offset (RFC 3339), e.g. ...Z")
    items = repo_of(request).readings_page(device_id.lower(), start, end, limit, after)
    if not items and after is None and device_id.lower() not in repo_of(request).device_ids():
        raise NotFound(f"no device {device_id}")
    return {"items": items, "next_after": items[-1]["ts"] if len(items) == limit else None}


@router.get("/healthz", response_model=Health, tags=["health"])
def healthz() -> dict[str, Any]:
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
            await bus.ping()
            checks["bus"] = "ok"
        except WeatherpipeError as exc:
            checks["bus"] = str(exc)
    ok = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ok" if ok else "unavailable", "checks": checks}, status_code=200 if ok else 503
    )


__all__ = ["ReadingOut", "router"]
