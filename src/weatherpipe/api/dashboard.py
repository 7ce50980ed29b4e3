"""The pages' context: the fleet overview (home.html), a device's chart page (device.html) and
the four analyses with the day form (analyses.html)."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, get_args

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from weatherpipe.api.fleet import MAX_PER_PAGE, fleet_answer
from weatherpipe.storage.fleet import FleetQuery, Order, Sort
from weatherpipe.storage.repository import Repository

router = APIRouter()
NO_DATA = "No data found"
TEMPLATES = Path(__file__).with_name("templates")
SORTS = {
    "name": "name",
    "last_seen": "last seen",
    "anomalies": "anomalies",
    "silence": "silence",
}
# The device page's ranges; each starts no earlier than the device's first reading.
RANGES = {
    "all": "all",
    "15m": "15 min",
    "1h": "hour",
    "6h": "6 hours",
    "24h": "day",
    "7d": "week",
    "30d": "30 days",
}
PER_PAGE = 50


def cell(value: Any) -> str:
    """How the page prints one value (the templates' `cell` filter)."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S UTC")
    return str(value)


def span(seconds: float | None) -> str:
    """A duration as people read it: 45 s, 12 min, 3 h, 2 d (fleet.js's `span` twin)."""
    if seconds is None:
        return "never sent"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit}"
    return f"{int(seconds)} s"


def templates() -> Jinja2Templates:
    """The page templates, with the `cell` and `span` filters."""
    templates = Jinja2Templates(directory=TEMPLATES)
    templates.env.filters["cell"] = cell
    templates.env.filters["span"] = span
    return templates


def _render(request: Request, name: str, context: dict[str, Any], status: int = 200) -> Any:
    engine: Jinja2Templates = request.app.state.templates
    return engine.TemplateResponse(request, name, context, status_code=status)


def overview_query(request: Request, params: dict[str, str]) -> FleetQuery:
    """The overview's page, search and sort from the address; what does not parse is the
    default (a page is for people; the JSON endpoint answers bad input with a 422)."""
    sort = params.get("sort", "name")
    order = params.get("order", "asc")
    return FleetQuery(
        page=_whole(params.get("page"), 1, 1, 1_000_000),
        per_page=_whole(params.get("per_page"), PER_PAGE, 1, MAX_PER_PAGE),
        q=params.get("q", "").strip()[:100],
        sort=sort if sort in get_args(Sort) else "name",  # type: ignore[arg-type]
        order=order if order in get_args(Order) else "asc",  # type: ignore[arg-type]
        detector=request.app.state.settings.detector,
    )


def _whole(text: str | None, default: int, low: int, high: int) -> int:
    try:
        value = int(text or default)
    except ValueError:
        return default
    return min(max(value, low), high)


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def home(request: Request) -> HTMLResponse:
    """The fleet overview: one page of devices, the fleet's totals and the health strip."""
    query = overview_query(request, dict(request.query_params))
    answer = await fleet_answer(request, query)
    return _render(request, "home.html", {"fleet": answer, "sorts": SORTS, "no_data": NO_DATA})


@router.get("/devices/{device_id}", response_class=HTMLResponse, include_in_schema=False)
async def device_page(request: Request, device_id: str) -> HTMLResponse:
    """One device: its figures and its temperature chart (device.js draws it with uPlot)."""
    query = FleetQuery(
        per_page=1, device_id=device_id.lower(), detector=request.app.state.settings.detector
    )
    answer = await fleet_answer(request, query)
    if not answer["devices"]:
        return _render(request, "missing.html", {"device_id": device_id}, status=404)
    context = {"device": answer["devices"][0], "ranges": RANGES, "health": answer["health"]}
    return _render(request, "device.html", context)


def _day_form(params: dict[str, str]) -> tuple[dict[str, str], dict[str, Any] | None, str]:
    """The form's values, the parsed query (or None) and a problem to show (or "")."""
    today = datetime.now(UTC)
    values = {
        "day": params.get("day", str(today.day)),
        "month": params.get("month", str(today.month)),
        "year": params.get("year", ""),
    }
    try:
        day, month = int(values["day"]), int(values["month"])
        year = int(values["year"]) if values["year"].strip() else None
    except ValueError:
        return values, None, "Day, month and year must be whole numbers."
    if not 1 <= month <= 12 or (year is not None and not 1970 <= year <= 9999):
        return values, None, "Month must be 1-12 and year 1970-9999."
    if not 1 <= day <= calendar.monthrange(year or 2000, month)[1]:
        return values, None, f"Day {day} does not exist in month {month}."
    return values, {"day": day, "month": month, "year": year}, ""


@router.get("/analyses", response_class=HTMLResponse, include_in_schema=False)
def analyses(request: Request) -> HTMLResponse:
    """The four original analyses, every device named, and the day-and-month form."""
    repo: Repository = request.app.state.repo
    names = {d["device_id"]: d["name"] for d in repo.devices(request.app.state.settings.detector)}
    form, query, problem = _day_form(dict(request.query_params))
    since = datetime.now(UTC) - timedelta(minutes=30)
    context = {
        "no_data": NO_DATA,
        "counts": _named(repo.analysis("devicedata"), names),
        "maxima": _named(repo.analysis("devicemax"), names),
        "form": form,
        "daymax": None if query is None else _named(repo.analysis("daymax", **query), names),
        "problem": problem,
        "anomalies": _named(_with_kinds(repo, since), names),
    }
    return _render(request, "analyses.html", context)


def _with_kinds(repo: Repository, since: datetime) -> list[dict[str, Any]]:
    """Anomalies per device, each with what its flags say they are ("spike (high) x2, ...")."""
    flagged: dict[str, list[dict[str, Any]]] = {}
    for reading in repo.anomalous_readings(since):
        flagged.setdefault(reading["device_id"], []).append(reading)
    rows = repo.analysis("deviceanomalies", since=since)
    return [{**row, "kinds": kinds(flagged.get(row["device_id"], []))} for row in rows]


def kinds(readings: list[dict[str, Any]]) -> str:
    """The kinds and severities of flagged readings, most frequent first."""
    counts: dict[str, int] = {}
    for r in readings:
        label = f"{r['kind']} ({r['severity']})" if r["kind"] else "unlabelled"
        counts[label] = counts.get(label, 0) + 1
    ranked = sorted(counts.items(), key=lambda item: -item[1])
    return ", ".join(label + (f" x{n}" if n > 1 else "") for label, n in ranked) or "-"


def _named(rows: list[dict[str, Any]], names: dict[str, str | None]) -> list[dict[str, Any]]:
    """Each row with the device's registry name (its id where it has none)."""
    return [{**row, "name": names.get(row["device_id"]) or row["device_id"]} for row in rows]
