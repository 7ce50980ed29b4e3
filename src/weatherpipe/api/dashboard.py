"""The home page: device cards, live charts and the four analyses, readable with scripts off."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta
from html import escape
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from weatherpipe.sensors.profiles import KNOWN_NAMES
from weatherpipe.storage.repository import Repository

router = APIRouter()
RANGES = {"1h": "last hour", "24h": "last day", "7d": "last week", "30d": "last 30 days"}
NO_DATA = "No data found"
# What the card says about detection (a new device learns for a few minutes before it flags).
DETECTION = {"not_started": "not started", "warming_up": "warming up", "monitoring": "monitoring"}


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S UTC")
    return str(value)


def _table(rows: list[dict[str, Any]], columns: dict[str, str], table_id: str) -> str:
    head = "".join(f"<th>{escape(title)}</th>" for title in columns.values())
    body = (
        "".join(
            "<tr>" + "".join(f"<td>{escape(_fmt(row.get(c)))}</td>" for c in columns) + "</tr>"
            for row in rows
        )
        or f'<tr class="empty"><td colspan="{len(columns)}">{NO_DATA}</td></tr>'
    )
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _section(title: str, content: str, section_id: str) -> str:
    return f'<section id="{section_id}"><h2>{escape(title)}</h2>{content}</section>'


def _card(device: dict[str, Any]) -> str:
    did = escape(device["device_id"])
    last = (
        f"{_fmt(device['last_temperature'])} °C at {_fmt(device['last_ts'])}"
        if device["last_ts"]
        else "-"
    )
    return (
        f'<article class="device" data-device-id="{did}">'
        f'<h3 class="name">{escape(device["name"])}</h3>'
        f'<p class="place">{device["latitude"]:.3f}, {device["longitude"]:.3f}'
        f" · <code>{did}</code></p>"
        f'<dl><dt>Last reading</dt><dd class="last">{escape(last)}</dd>'
        f'<dt>Readings</dt><dd class="count">{device["count"]:,}</dd>'
        f'<dt>Maximum</dt><dd class="max">{escape(_fmt(device["max_temperature"]))} °C</dd>'
        f'<dt>Detection</dt><dd class="detection">{DETECTION[device["detection"]]}</dd></dl>'
        f'<figure class="chart" aria-label="temperature of {escape(device["name"])}">'
        f'<svg viewBox="0 0 360 150" role="img"></svg>'
        f'<figcaption class="chart-note">Charts need scripts; the tables below do not.'
        f"</figcaption></figure></article>"
    )


def _day_form(params: dict[str, str]) -> tuple[str, dict[str, Any] | None, str | None]:
    """The day-and-month form, the parsed query (or None) and a problem to show (or None)."""
    today = datetime.now(UTC)
    values = {
        "day": params.get("day", str(today.day)),
        "month": params.get("month", str(today.month)),
        "year": params.get("year", ""),
    }
    fields = "".join(
        f'<label>{name.capitalize()} <input name="{name}" inputmode="numeric" size="4" '
        f'value="{escape(value)}"></label> '
        for name, value in values.items()
    )
    form = f'<form method="get" action="/" id="daymax-form">{fields}<button>Show</button></form>'
    try:
        day, month = int(values["day"]), int(values["month"])
        year = int(values["year"]) if values["year"].strip() else None
    except ValueError:
        return form, None, "Day, month and year must be whole numbers."
    if not 1 <= month <= 12 or (year is not None and not 1970 <= year <= 9999):
        return form, None, "Month must be 1-12 and year 1970-9999."
    if not 1 <= day <= calendar.monthrange(year or 2000, month)[1]:
        return form, None, f"Day {day} does not exist in month {month}."
    return form, {"day": day, "month": month, "year": year}, None


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def home(request: Request) -> str:
    repo: Repository = request.app.state.repo
    devices = repo.devices(request.app.state.settings.detector)
    for d in devices:
        d["name"] = d["name"] or KNOWN_NAMES.get(d["device_id"], d["device_id"][:8])
    names = {d["device_id"]: d["name"] for d in devices}
    form, query, problem = _day_form(dict(request.query_params))
    if query is not None:
        daily = repo.analysis("daymax", **query)
        answer = _table(
            _named(daily, names),
            {"name": "Device", "max_temperature": "Max °C"},
            "daymax",
        )
    else:
        answer = f'<p class="problem" id="daymax">{escape(problem or "")}</p>'
    since = datetime.now(UTC) - timedelta(minutes=30)
    cards = "".join(_card(d) for d in devices) or f'<p class="empty">{NO_DATA}</p>'
    ranges = "".join(
        f'<button type="button" data-range="{key}"{" aria-pressed=true" if key == "1h" else ""}>'
        f"{escape(label)}</button>"
        for key, label in RANGES.items()
    )
    sections = [
        f'<section id="devices"><h2>Devices</h2><nav class="ranges">{ranges}</nav>'
        f'<div class="cards">{cards}</div></section>',
        _section(
            "Readings per device",
            _table(
                _named(repo.analysis("devicedata"), names),
                {"name": "Device", "count": "Readings"},
                "counts",
            ),
            "counts-section",
        ),
        _section(
            "Maximum temperature per device",
            _table(
                _named(repo.analysis("devicemax"), names),
                {"name": "Device", "max_temperature": "Max °C"},
                "max",
            ),
            "max-section",
        ),
        _section(
            "Maximum temperature on a day and month (UTC)",
            form + answer,
            "daymax-section",
        ),
        _section(
            "Anomalies in the last 30 minutes",
            _table(
                _named(_with_kinds(repo, since), names),
                {"name": "Device", "count": "Anomalies", "kinds": "Kinds"},
                "anomalies",
            ),
            "anomalies-section",
        ),
    ]
    return PAGE.replace("{{sections}}", "".join(sections))


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


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>weatherpipe</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/static/dashboard.css">
<script src="/static/dashboard.js" defer></script>
</head>
<body><header><h1>weatherpipe</h1>
<p>Live temperatures, their analyses and anomalies · API: <a href="/docs">/docs</a> ·
<span id="updated">rendered by the server</span></p></header>
<main>{{sections}}</main>
</body></html>
"""
