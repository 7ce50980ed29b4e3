"""The row types the storage seams hand over, and how database values become plain Python."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from weatherpipe.reading import Reading

# Timestamp columns that a dialect may hand over as text (SQLite, MySQL read as CHAR).
TIME_KEYS = frozenset({"ts", "received_at", "minute"})

# A stored reading as the detector reads it: (id, ts, temperature, received_at).
Row = tuple[int, datetime, float, datetime]


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message that is not a reading: its raw bytes and why it was refused. `key` names the
    message it was made of (ingest/refusals.py): a second dead letter of the same key, from a
    redelivery, is not stored; None is never taken for a copy."""

    data: bytes
    reason: str
    attributes: Mapping[str, str] | None = None
    key: str | None = None


@dataclass(frozen=True, slots=True)
class Prepared:
    """Readings and their writes, rendered by the dialect before the transaction begins."""

    readings: list[Reading]
    received: datetime
    rendered: object


@dataclass(frozen=True, slots=True)
class BatchResult:
    stored: int
    duplicates: int
    dead: int


@dataclass(frozen=True, slots=True)
class Scored:
    """A reading's detection result, keyed by its row id."""

    reading_id: int
    score: float
    is_anomaly: bool
    kind: str = ""  # an onset's kind and severity ("" otherwise: stored as NULL)
    severity: str = ""


@dataclass(frozen=True, slots=True)
class Detection:
    """One device's detection pass: its new position and state, and the scores it gave."""

    device_id: str
    last_ts: datetime
    state: str  # the detector's to_state(), as JSON text
    results: Sequence[Scored]
    warming_up: bool = False
    false_alarms_per_day: float | None = None  # the sensitivity the state was built with


def naive_utc(ts: datetime) -> datetime:
    """Databases store naive UTC; weatherpipe hands them only aware datetimes."""
    return ts.astimezone(UTC).replace(tzinfo=None) if ts.tzinfo else ts


def aware(ts: datetime) -> datetime:
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts


def aware_or_none(ts: datetime | None) -> datetime | None:
    """`aware(ts)`, passing a missing time (NULL) through."""
    return aware(ts) if ts is not None else None


def float_or_none(value: Any) -> float | None:
    """A nullable DOUBLE as a float (MySQL's driver hands over Decimal)."""
    return None if value is None else float(value)


def detection_state(detected: str | None, warming_up: bool | None) -> str:
    """Where detection stands on a device: not started, warming up, or monitoring."""
    if detected is None:
        return "not_started"
    return "warming_up" if warming_up else "monitoring"


def plain(row: Mapping[Any, Any]) -> dict[str, Any]:
    """A result row as a dict with aware datetimes and plain numbers."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, datetime):
            value = aware(value)
        elif key in TIME_KEYS and isinstance(value, str):
            value = datetime.fromisoformat(value).replace(tzinfo=UTC)
        elif key in ("count", "n") and value is not None:
            value = int(value)
        elif type(value).__name__ == "Decimal":
            value = float(value)
        out[key] = value
    return out


def plain_rows(keys: list[str], rows: Sequence[Sequence[Any]]) -> list[dict[str, Any]]:
    """Rows as dicts like `plain`, choosing each column's conversion once (answers of
    thousands of rows spend their time here)."""
    converters: list[tuple[int, Callable[[Any], Any]]] = []
    for index, key in enumerate(keys):
        sample = next((row[index] for row in rows if row[index] is not None), None)
        convert = _converter(key, sample)
        if convert is not None:
            converters.append((index, convert))
    out = []
    for row in rows:
        values = list(row)
        for index, convert in converters:
            if values[index] is not None:
                values[index] = convert(values[index])
        out.append(dict(zip(keys, values, strict=True)))
    return out


def _converter(key: str, sample: Any) -> Callable[[Any], Any] | None:
    if isinstance(sample, datetime):
        return aware
    if isinstance(sample, str) and key in TIME_KEYS:
        return _parse_time
    if key in ("count", "n") and sample is not None:
        return int
    if type(sample).__name__ == "Decimal":
        return float
    return None


def _parse_time(value: str) -> datetime:
    # Appending the offset is ~6x faster than .replace(tzinfo=UTC) on the parsed value.
    return datetime.fromisoformat(value + "+00:00")
