"""Chart marks: one per flag at raw resolution, past it one per bucket with the worst flag."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from weatherpipe.api.marks import grouped

T0 = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)


def flag(
    seconds: int, severity: str | None, score: float | None, kind: str = "spike"
) -> dict[str, Any]:
    return {
        "ts": T0 + timedelta(seconds=seconds),
        "temperature": 20.0 + seconds / 1000,
        "anomaly_score": score,
        "detector": "default",
        "kind": kind if severity else None,
        "severity": severity,
    }


FLAGS = [
    flag(5, "low", 0.99),
    flag(20, "high", 0.6, "dip"),
    flag(30, None, None),  # a flag that continues an anomaly: no kind, no severity
    flag(70, "medium", 0.7),
    flag(3700, "medium", 0.8, "drift"),
    flag(3710, "medium", 0.9, "shift"),
]


def test_raw_resolution_keeps_every_flag_as_its_own_mark() -> None:
    marks = grouped([dict(f) for f in FLAGS], "raw")
    assert [m["ts"] for m in marks] == [f["ts"] for f in FLAGS]
    assert {m["count"] for m in marks} == {1}


def test_a_minute_is_one_mark_with_the_worst_severity_before_the_highest_score() -> None:
    marks = grouped([dict(f) for f in FLAGS], "minute")
    assert [(m["ts"], m["count"], m["kind"], m["severity"]) for m in marks] == [
        (T0, 3, "dip", "high"),
        (T0 + timedelta(minutes=1), 1, "spike", "medium"),
        (T0 + timedelta(hours=1, minutes=1), 2, "shift", "medium"),  # same severity: score
    ]
    assert marks[0]["temperature"] == FLAGS[1]["temperature"]  # drawn at the worst reading


def test_hours_and_days_group_the_same_flags_coarser() -> None:
    hours = grouped([dict(f) for f in FLAGS], "hour")
    assert [(m["ts"], m["count"], m["severity"]) for m in hours] == [
        (T0, 4, "high"),
        (T0 + timedelta(hours=1), 2, "medium"),
    ]
    (day,) = grouped([dict(f) for f in FLAGS], "day")
    assert (day["ts"], day["count"], day["kind"]) == (T0.replace(hour=0), 6, "dip")
