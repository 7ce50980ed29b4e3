"""The home page: the four analyses as plain tables, refreshed live by a small script."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from html import escape
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from weatherpipe.sensors.profiles import KNOWN_NAMES
from weatherpipe.storage.repository import Repository

router = APIRouter()


def _table(title: str, rows: list[dict[str, Any]], columns: list[str], table_id: str) -> str:
    head = "".join(f"<th>{escape(c)}</th>" for c in columns)
    body = (
        "".join(
            "<tr>" + "".join(f"<td>{escape(_fmt(row.get(c)))}</td>" for c in columns) + "</tr>"
            for row in rows
        )
        or f'<tr><td colspan="{len(columns)}">No data found</td></tr>'
    )
    return (
        f'<section><h2>{escape(title)}</h2><table id="{table_id}"><thead><tr>{head}</tr>'
        f"</thead><tbody>{body}</tbody></table></section>"
    )


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S UTC")
    return str(value)


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def home(request: Request) -> str:
    repo: Repository = request.app.state.repo
    devices = repo.devices()
    for d in devices:
        d["name"] = d["name"] or KNOWN_NAMES.get(d["device_id"], d["device_id"][:8])
    since = datetime.now(UTC) - timedelta(minutes=30)
    sections = [
        _table(
            "Devices",
            devices,
            ["name", "device_id", "count", "last_temperature", "max_temperature", "last_ts"],
            "devices",
        ),
        _table(
            "Readings per device", repo.analysis("devicedata"), ["device_id", "count"], "counts"
        ),
        _table(
            "Maximum temperature per device",
            repo.analysis("devicemax"),
            ["device_id", "max_temperature"],
            "max",
        ),
        _table(
            "Anomalies in the last 30 minutes",
            repo.analysis("deviceanomalies", since=since),
            ["device_id", "count"],
            "anomalies",
        ),
    ]
    return PAGE.replace("{{sections}}", "".join(sections))


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>weatherpipe</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font-family:system-ui,sans-serif;margin:2rem;color:#222}
table{border-collapse:collapse;margin-bottom:1rem}td,th{border:1px solid #ccc;padding:.3rem .6rem}
th{background:#f3f3f3;text-align:left}
</style></head>
<body><h1>weatherpipe</h1>
<p>Live temperatures, their analyses and anomalies. API: <a href="/docs">/docs</a>.</p>
{{sections}}
<script>setTimeout(function(){location.reload()},5000)</script>
</body></html>
"""
