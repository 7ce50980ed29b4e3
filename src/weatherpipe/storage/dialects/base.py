"""What a database dialect provides, and the batch arithmetic every dialect's writes share.

A dialect renders an ingest batch before its transaction (pure, so ingest renders one batch
while the previous is written), writes it, writes detection scores, and knows its own SQL
functions and errors. Each dialect's module imports its driver only when it is used.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import DateTime, Table, bindparam, delete, select, tuple_, update
from sqlalchemy.exc import DBAPIError

from weatherpipe.storage.faults import Fault
from weatherpipe.storage.tables import readings

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine
    from sqlalchemy.engine import URL
    from sqlalchemy.sql.elements import ColumnElement

    from weatherpipe.reading import Reading
    from weatherpipe.storage.rows import Scored

# One write of a batch: literal SQL (rows None), or SQL with placeholders and its rows.
Statement = tuple[str, Sequence[tuple[Any, ...]] | None]


@dataclass(frozen=True, slots=True)
class Statements:
    """A batch rendered as statements that store its `readings` readings (or raise
    IntegrityError if one is stored already)."""

    statements: list[Statement]
    readings: int


# What a detector_state upsert replaces on a device's existing row, on every dialect.
STATE_REPLACED = ("last_ts", "state", "updated_at", "warming_up", "false_alarms_per_day")


class Dialect:
    """One database's SQL and write paths; subclasses fill in what differs."""

    name: str = ""

    def create_engine(self, url: URL) -> Engine:
        raise NotImplementedError

    def render(self, batch: Sequence[Reading], received: datetime) -> object:
        """The batch's readings, rollups and devices, ready for `write` (pure)."""
        raise NotImplementedError

    def write(self, conn: Connection, rendered: Any) -> int:
        """Write a rendered batch in `conn`'s transaction; returns how many readings were new.
        A dialect may instead raise IntegrityError on a stored key: the caller then writes
        the batch again without the keys already there."""
        raise NotImplementedError

    def state_upsert(self) -> Any:
        """INSERT of detector_state rows that replaces a device's stored position and state
        (the columns in STATE_REPLACED)."""
        raise NotImplementedError

    def dead_letter_insert(self) -> Any:
        """INSERT of dead_letters rows that skips a row whose message_key is stored already
        (or earlier in the same rows), and nothing else: any other error still raises."""
        raise NotImplementedError

    def hour(self, minute: ColumnElement[Any]) -> ColumnElement[Any]:
        """The hour a minute-rollup timestamp falls in, as 'YYYY-MM-DD HH:00:00' text."""
        raise NotImplementedError

    def write_scores(self, conn: Connection, detector: str, results: Sequence[Scored]) -> None:
        """Scores and flags of stored readings by id, with each flag's kind and severity
        ("": NULL), as an executemany UPDATE by default."""
        conn.execute(
            update(readings)
            .where(readings.c.id == bindparam("rid"))
            .values(
                is_anomaly=bindparam("flag"),
                anomaly_score=bindparam("score"),
                detector=detector,
                kind=bindparam("kind"),
                severity=bindparam("severity"),
            ),
            [
                {
                    "rid": s.reading_id,
                    "flag": s.is_anomaly,
                    "score": s.score,
                    "kind": s.kind or None,
                    "severity": s.severity or None,
                }
                for s in results
            ],
        )

    def delete_oldest(self, table: Table, column: str, by_device: bool, limit: int) -> Any:
        """DELETE of at most `limit` rows of `table` whose `column` is before :cutoff (of
        :device_id only, with `by_device`), oldest first: one short transaction's worth.
        By default by key subselect (PostgreSQL): the table's primary key IN the keys of the
        oldest rows."""
        where = older_than(table, column, by_device)
        keys = list(table.primary_key.columns)
        oldest = select(*keys).where(*where).order_by(table.c[column]).limit(limit)
        key = keys[0] if len(keys) == 1 else tuple_(*keys)
        return delete(table).where(key.in_(oldest))

    def text_columns(self, columns: Iterable[Any]) -> list[Any]:
        """Columns to select; a dialect whose driver parses timestamps slowly reads them as
        text instead (see `rows.plain_rows`)."""
        return list(columns)

    def fault(self, exc: DBAPIError) -> Fault:
        """What `exc` means for the write that raised it (see storage/faults.py). Without a
        dialect's own answer, nothing is taken for refused data."""
        return Fault.UNAVAILABLE if exc.connection_invalidated else Fault.OTHER

    def is_lock_conflict(self, exc: DBAPIError) -> bool:
        """A deadlock or lock wait: the whole transaction may be retried."""
        return self.fault(exc) is Fault.CONFLICT


def older_than(table: Table, column: str, by_device: bool) -> list[Any]:
    """`column < :cutoff`, and `device_id = :device_id` with `by_device` (so an index that
    leads with device_id finds the rows)."""
    where = [table.c[column] < bindparam("cutoff")]
    if by_device:
        where.insert(0, table.c.device_id == bindparam("device_id"))
    return where


def as_text(columns: Iterable[Any], text_of: Callable[[Any], Any]) -> list[Any]:
    """Timestamp columns wrapped by `text_of` and labelled as themselves."""
    return [text_of(c).label(c.key) if isinstance(c.type, DateTime) else c for c in columns]


def run(conn: Connection, statements: Iterable[Statement]) -> None:
    """Execute statements in `conn`'s transaction."""
    for sql, rows in statements:
        if rows is None:
            conn.exec_driver_sql(sql, execution_options={"no_parameters": True})
        else:
            conn.exec_driver_sql(sql, rows)


def number(value: float | None) -> str:
    """A float literal that reads back as the very same double (repr round-trips)."""
    if value is None:  # a reading without a place: ingest gives it the registry's first
        raise ValueError("cannot store a reading without latitude and longitude")
    if type(value) is not float:
        value = float(value)
    if value - value != 0.0:  # inf and nan; cheaper than math.isfinite on the hot path
        raise ValueError(f"cannot store a non-finite number {value!r}")
    return repr(value)


def stamp(ts: datetime) -> str:
    """A timestamp literal in UTC with milliseconds: 'YYYY-MM-DD HH:MM:SS.mmm'."""
    if ts.tzinfo is not None:
        ts = ts.astimezone(UTC).replace(tzinfo=None)
    return ts.isoformat(" ", "milliseconds")


def stamped(batch: Sequence[Reading], render: Callable[[datetime], str]) -> list[str]:
    """Each reading's timestamp as text; each distinct instant is rendered once."""
    cache: dict[datetime, str] = {}
    return [cache.get(r.ts) or cache.setdefault(r.ts, render(r.ts)) for r in batch]


def minute_cells(
    batch: Sequence[Reading], texts: Sequence[str]
) -> dict[tuple[str, str], list[Any]]:
    """Per (device, minute): count, min, max and sum of temperature, the first and last
    timestamp, and the device's place at the last one. Every later figure derives from these."""
    cells: dict[tuple[str, str], list[Any]] = {}
    for r, ts in zip(batch, texts, strict=True):
        t = r.temperature
        key = (r.device_id, ts[:16])
        cell = cells.get(key)
        if cell is None:
            cells[key] = [1, t, t, t, ts, ts, r.latitude, r.longitude]
            continue
        cell[0] += 1
        if t < cell[1]:
            cell[1] = t
        if t > cell[2]:
            cell[2] = t
        cell[3] += t
        if ts < cell[4]:  # same-width ISO strings compare like the instants they name
            cell[4] = ts
        if ts > cell[5]:
            cell[5], cell[6], cell[7] = ts, r.latitude, r.longitude
    return cells


def days_and_spans(
    minutes: dict[tuple[str, str], list[Any]],
) -> tuple[dict[tuple[str, str], list[Any]], dict[str, list[Any]]]:
    """Daily cells (count, min, max, sum) and each device's first and last timestamp with its
    place at the last, folded from the minute cells."""
    days: dict[tuple[str, str], list[Any]] = {}
    spans: dict[str, list[Any]] = {}
    for (device, minute), (n, low, high, total, first, last, lat, lon) in minutes.items():
        day = days.get((device, minute[:10]))
        if day is None:
            days[(device, minute[:10])] = [n, low, high, total]
        else:
            day[0] += n
            day[1] = min(day[1], low)
            day[2] = max(day[2], high)
            day[3] += total
        span = spans.get(device)
        if span is None:
            spans[device] = [first, last, lat, lon]
            continue
        span[0] = min(span[0], first)
        if last > span[1]:
            span[1], span[2], span[3] = last, lat, lon
    return days, spans
