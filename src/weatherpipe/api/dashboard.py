"""The home page's context: device cards, the four analyses, the day form (home.html)."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from weatherpipe.storage.repository import Repository

router = APIRouter()
RANGES = {"1h": "last hour", "24h": "last day", "7d": "last week", "30d": "last 30 days"}
NO_DATA = "No data found"
TEMPLATES = Path(__file__).with_name("templates")


def cell(value: Any) -> str:
    """How the page prints one value (the templates' `cell` filter)."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S UTC")
    return str(value)


def templates() -> Jinja2Templates:
    """The page templates, with the `cell` filter."""
    templates = Jinja2Templates(directory=TEMPLATES)
    templates.env.filters["cell"] = cell
    return templates


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


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def home(request: Request) -> HTMLResponse:
    repo: Repository = request.app.state.repo
    devices = repo.devices(request.app.state.settings.detector)
    for d in devices:
        d["name"] = d["name"] or d["device_id"][:8]
    names = {d["device_id"]: d["name"] for d in devices}
    form, query, problem = _day_form(dict(request.query_params))
    since = datetime.now(UTC) - timedelta(minutes=30)
    context = {
        "devices": devices,
        "ranges": RANGES,
        "no_data": NO_DATA,
        "counts": _named(repo.analysis("devicedata"), names),
        "maxima": _named(repo.analysis("devicemax"), names),
        "form": form,
        "daymax": None if query is None else _named(repo.analysis("daymax", **query), names),
        "problem": problem,
        "anomalies": _named(_with_kinds(repo, since), names),
    }
    templates: Jinja2Templates = request.app.state.templates
    return templates.TemplateResponse(request, "home.html", context)


def _with_kinds(repo: Repository, since: datetime) -> list[dict[str, Any]]:
    """Anomalies per device, each with what its flags say they are ("spike (high) x2, ...")."""
    flagged: dict[str, list[dict[str, Any]]] = {}
    for reading in repo.anomalous_readings(since):
        flagged.setdefault(reading["device_id"], []).append(reading)
    rows = repo.analysis("deviceanomalies", since=since)
    return [{**row, "kinds": kinds(flagged.get(row["device_id"], []))} for row in rows]


def kinds(readings: list[dict[str, Any]]) -> str:
    """The kinds and severities of flagged readings, most frequent first (dashboard.js's twin)."""
    counts: dict[str, int] = {}
    for r in readings:
        label = f"{r['kind']} ({r['severity']})" if r["kind"] else "unlabelled"
        counts[label] = counts.get(label, 0) + 1
    ranked = sorted(counts.items(), key=lambda item: -item[1])
    return ", ".join(label + (f" x{n}" if n > 1 else "") for label, n in ranked) or "-"


def _named(rows: list[dict[str, Any]], names: dict[str, str]) -> list[dict[str, Any]]:
    return [{**row, "name": names.get(row["device_id"], row["device_id"])} for row in rows]
