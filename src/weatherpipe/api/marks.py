"""Anomaly marks for a chart: one per flagged reading at raw resolution; at minute, hour and day
resolution one per bucket that holds flags, carrying how many and the worst of them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

SEVERITY_RANK = {"low": 1, "medium": 2, "high": 3}


def bucket(ts: datetime, resolution: str) -> datetime:
    """The start of the bucket `ts` falls in (the series point it belongs to)."""
    if resolution == "minute":
        return ts.replace(second=0, microsecond=0)
    if resolution == "hour":
        return ts.replace(minute=0, second=0, microsecond=0)
    return ts.replace(hour=0, minute=0, second=0, microsecond=0)


def grouped(marks: list[dict[str, Any]], resolution: str) -> list[dict[str, Any]]:
    """Flagged readings as chart marks: each its own at raw resolution; otherwise the worst of
    each bucket (highest severity, then score), at the bucket's start, with the bucket's count.
    A day of flags then draws one mark per hour or minute that had any, not dozens of dots."""
    if resolution == "raw":
        return [{**m, "count": 1} for m in marks]
    groups: dict[datetime, list[dict[str, Any]]] = {}
    for mark in marks:
        groups.setdefault(bucket(mark["ts"], resolution), []).append(mark)
    out = []
    for start, members in sorted(groups.items()):
        worst = max(members, key=_badness)
        out.append({**worst, "ts": start, "count": len(members)})
    return out


def _badness(mark: dict[str, Any]) -> tuple[int, float]:
    return SEVERITY_RANK.get(mark["severity"] or "", 0), mark["anomaly_score"] or 0.0
