"""Every SQL statement weatherpipe runs: ingest writes, analyses, detection, dead letters."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

import orjson
from sqlalchemy import (
    Connection,
    DateTime,
    Engine,
    String,
    Table,
    and_,
    bindparam,
    cast,
    func,
    insert,
    literal,
    select,
    text,
    type_coerce,
    update,
)
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.exc import DBAPIError, IntegrityError

from weatherpipe.errors import StorageError, StorageRefused, StorageUnavailable
from weatherpipe.reading import Reading
from weatherpipe.storage import bulk, faults
from weatherpipe.storage.analyses import ANALYSES
from weatherpipe.storage.bulk import Statement
from weatherpipe.storage.engine import create_db_engine
from weatherpipe.storage.faults import Fault
from weatherpipe.storage.tables import (
    dead_letters,
    detector_state,
    devices,
    injected_anomalies,
    readings,
    readings_daily,
    readings_minute,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
# A deadlock or lock wait between two ingest processes is retried; the transaction is whole.
RETRIES = 5
# Timestamp columns that `Repository._columns` may hand over as SQLite text.
TIME_KEYS = frozenset({"ts", "received_at", "minute"})
# What a reader of readings gets: every column but the ingest bookkeeping (received_at).
READING_COLUMNS = [c for c in readings.c if c.key != "received_at"]
# `is_anomaly = 1` (not `IS TRUE`) so MySQL can use the (is_anomaly, ts) index.
FLAGGED = literal(True)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message that is not a reading: its raw bytes and why it was refused."""

    data: bytes
    reason: str
    attributes: Mapping[str, str] | None = None


@dataclass(frozen=True, slots=True)
class Prepared:
    """Readings and their writes, rendered (None: written through SQLAlchemy Core)."""

    readings: list[Reading]
    received: datetime
    statements: list[Statement] | None


@dataclass(frozen=True, slots=True)
class BatchResult:
    stored: int
    duplicates: int
    dead: int


# A stored reading as the detector reads it: (id, ts, temperature, received_at).
Row = tuple[int, datetime, float, datetime]


@dataclass(frozen=True, slots=True)
class Detection:
    """One device's detection pass: its new position and state, and the scores it gave."""

    device_id: str
    last_ts: datetime
    state: bytes
    results: Sequence[Scored]


@dataclass(frozen=True, slots=True)
class Scored:
    """A reading's detection result, keyed by its row id."""

    reading_id: int
    score: float
    is_anomaly: bool


def naive_utc(ts: datetime) -> datetime:
    """Databases store naive UTC; weatherpipe hands them only aware datetimes."""
    return ts.astimezone(UTC).replace(tzinfo=None) if ts.tzinfo else ts


def aware(ts: datetime) -> datetime:
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts


class Repository:
    """The database, as weatherpipe uses it."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name

    @classmethod
    def from_url(cls, url: str) -> Repository:
        return cls(create_db_engine(url))

    def close(self) -> None:
        self.engine.dispose()

    def _run(self, work: Callable[[Connection], T]) -> T:
        """Run `work` in one transaction; translate driver errors, retry deadlocks."""
        for attempt in range(RETRIES):
            try:
                with self.engine.begin() as conn:
                    return work(conn)
            except DBAPIError as exc:
                fault = faults.classify(self.dialect, exc)
                if fault is Fault.DUPLICATE:
                    raise  # store_batch writes the batch again without the stored keys
                if fault is Fault.CONFLICT and attempt < RETRIES - 1:
                    time.sleep(0.05 * (attempt + 1))
                    continue
                if fault is Fault.DATA:
                    raise StorageRefused(faults.message(exc)) from exc
                if fault in (Fault.CONFLICT, Fault.UNAVAILABLE):
                    raise StorageUnavailable(f"database unavailable: {_first_line(exc)}") from exc
                raise StorageError(_first_line(exc)) from exc
            except OverflowError as exc:  # sqlite3 binds integers of 64 bits at most
                raise StorageRefused(f"{exc}") from exc
        raise AssertionError("unreachable")

    def ping(self) -> None:
        self._run(lambda conn: conn.execute(text("SELECT 1")))

    # -- ingest ---------------------------------------------------------------------------------

    def prepare(self, batch: Sequence[Reading], received_at: datetime | None = None) -> Prepared:
        """A batch rendered for its transaction; pure, so ingest renders one batch while the
        previous is written. `store_batch` takes it (or plain readings)."""
        received = naive_utc(received_at or datetime.now(UTC))
        return Prepared(list(batch), received, self._render(batch, received))

    def _render(self, batch: Sequence[Reading], received: datetime) -> list[Statement] | None:
        if self.dialect in ("mysql", "mariadb"):
            return bulk.render_readings(batch, received)
        if self.dialect == "sqlite":
            return bulk.render_readings_sqlite(batch, received)
        return None  # the portable way, through SQLAlchemy Core

    def store_batch(
        self,
        batch: Sequence[Reading] | Prepared,
        dead: Sequence[DeadLetter] = (),
        received_at: datetime | None = None,
    ) -> BatchResult:
        """Store readings (each key once), dead letters and rollups in one transaction.

        The fast path is the batch as it is. If any key is in it twice or already stored (a
        redelivery), that transaction rolls back and the batch is written again without those
        keys, so the rollups count each reading exactly once, even with concurrent writers.
        """
        prepared = batch if isinstance(batch, Prepared) else self.prepare(batch, received_at)
        for attempt in range(RETRIES):
            write = functools.partial(
                self._write_batch, prepared=prepared, dead=dead, check_existing=attempt > 0
            )
            try:
                fresh = self._run(write)
            except IntegrityError:
                continue
            total = len(prepared.readings)
            return BatchResult(fresh, total - fresh, len(dead))
        raise StorageError("batch kept colliding with concurrent writers")

    def _write_batch(
        self,
        conn: Connection,
        prepared: Prepared,
        dead: Sequence[DeadLetter],
        check_existing: bool,
    ) -> int:
        """Write the batch in `conn`'s transaction; returns how many readings were new."""
        received = prepared.received
        fresh, statements = prepared.readings, prepared.statements
        if check_existing:
            fresh = self._unseen(conn, _distinct(fresh))
            statements = self._render(fresh, received)
        if fresh and statements is not None:
            bulk.run(conn, statements)
        elif fresh:
            conn.execute(insert(readings), [_reading_row(r, received) for r in fresh])
            self._add_rollups(conn, fresh)
            self._touch_devices(conn, fresh)
        if dead:
            conn.execute(insert(dead_letters), [_dead_row(d, received) for d in dead])
        return len(fresh)

    def _unseen(self, conn: Connection, batch: list[Reading]) -> list[Reading]:
        if not batch:
            return batch
        stamps = [naive_utc(r.ts) for r in batch]
        query = select(readings.c.device_id, readings.c.ts).where(
            readings.c.device_id.in_({r.device_id for r in batch}),
            readings.c.ts.between(min(stamps), max(stamps)),
        )
        stored = {(device, aware(ts)) for device, ts in conn.execute(query)}
        return [r for r in batch if r.key not in stored]

    def _add_rollups(self, conn: Connection, batch: list[Reading]) -> None:
        minutes: dict[tuple[str, datetime], list[float]] = {}
        days: dict[tuple[str, date], list[float]] = {}
        for r in batch:
            ts = naive_utc(r.ts)
            minute = ts.replace(second=0, microsecond=0)
            _fold(minutes, (r.device_id, minute), r.temperature)
            _fold(days, (r.device_id, minute.date()), r.temperature)
        minute_rows = [
            {
                "device_id": d,
                "minute": m,
                "n": int(a[0]),
                "t_min": a[1],
                "t_max": a[2],
                "t_sum": a[3],
            }
            for (d, m), a in sorted(minutes.items())
        ]
        day_rows = [
            {
                "device_id": d,
                "day": day,
                "year": day.year,
                "month": day.month,
                "dom": day.day,
                "n": int(a[0]),
                "t_min": a[1],
                "t_max": a[2],
                "t_sum": a[3],
            }
            for (d, day), a in sorted(days.items())
        ]
        self._upsert_add(conn, readings_minute, ("device_id", "minute"), minute_rows)
        self._upsert_add(conn, readings_daily, ("device_id", "day"), day_rows)

    def _upsert_add(
        self, conn: Connection, table: Table, keys: tuple[str, ...], rows: list[dict[str, Any]]
    ) -> None:
        """Insert rollup rows, or add them into the stored ones (count, sum, min, max)."""
        if self.dialect in ("mysql", "mariadb"):
            my = mysql.insert(table)
            conn.execute(
                my.on_duplicate_key_update(
                    n=table.c.n + my.inserted.n,
                    t_sum=table.c.t_sum + my.inserted.t_sum,
                    t_min=func.least(table.c.t_min, my.inserted.t_min),
                    t_max=func.greatest(table.c.t_max, my.inserted.t_max),
                ),
                rows,
            )
            return
        lite = (sqlite.insert if self.dialect == "sqlite" else postgresql.insert)(table)
        smaller, larger = (
            (func.min, func.max) if self.dialect == "sqlite" else (func.least, func.greatest)
        )
        conn.execute(
            lite.on_conflict_do_update(
                index_elements=list(keys),
                set_={
                    "n": table.c.n + lite.excluded.n,
                    "t_sum": table.c.t_sum + lite.excluded.t_sum,
                    "t_min": smaller(table.c.t_min, lite.excluded.t_min),
                    "t_max": larger(table.c.t_max, lite.excluded.t_max),
                },
            ),
            rows,
        )

    def _touch_devices(self, conn: Connection, batch: list[Reading]) -> None:
        latest: dict[str, Reading] = {}
        first: dict[str, datetime] = {}
        for r in batch:
            if r.device_id not in latest or r.ts > latest[r.device_id].ts:
                latest[r.device_id] = r
            first[r.device_id] = min(first.get(r.device_id, r.ts), r.ts)
        rows = [
            {
                "id": d,
                "name": None,
                "latitude": r.latitude,
                "longitude": r.longitude,
                "first_seen": naive_utc(first[d]),
                "last_seen": naive_utc(r.ts),
            }
            for d, r in sorted(latest.items())
        ]
        if self.dialect in ("mysql", "mariadb"):
            my = mysql.insert(devices)
            stmt: Any = my.on_duplicate_key_update(
                first_seen=func.least(devices.c.first_seen, my.inserted.first_seen),
                last_seen=func.greatest(devices.c.last_seen, my.inserted.last_seen),
                latitude=my.inserted.latitude,
                longitude=my.inserted.longitude,
            )
        else:
            lite = (sqlite.insert if self.dialect == "sqlite" else postgresql.insert)(devices)
            smaller, larger = (
                (func.min, func.max) if self.dialect == "sqlite" else (func.least, func.greatest)
            )
            stmt = lite.on_conflict_do_update(
                index_elements=["id"],
                set_={
                    "first_seen": smaller(devices.c.first_seen, lite.excluded.first_seen),
                    "last_seen": larger(devices.c.last_seen, lite.excluded.last_seen),
                    "latitude": lite.excluded.latitude,
                    "longitude": lite.excluded.longitude,
                },
            )
        conn.execute(stmt, rows)

    def name_devices(self, names: Mapping[str, str]) -> None:
        """Give known devices their display names (the simulator's catalogue)."""

        def work(conn: Connection) -> None:
            for device_id, name in names.items():
                conn.execute(update(devices).where(devices.c.id == device_id).values(name=name))

        self._run(work)

    # -- analyses and reads -----------------------------------------------------------------------

    def analysis(self, name: str, **params: Any) -> list[dict[str, Any]]:
        """Run one of the four original analyses (see storage/analyses.py)."""
        query = ANALYSES[name]
        values = {k: params.get(k) for k in query.params}
        if "since" in values and values["since"] is not None:
            values["since"] = naive_utc(values["since"])
        rows = self._run(lambda conn: conn.execute(query.statement(), values).mappings().all())
        return [_plain(row) for row in rows]

    def devices(self) -> list[dict[str, Any]]:
        """Every device with count, maximum (from daily rollups) and last reading, in one query.

        The last reading is found through devices.last_seen, an index point lookup per device,
        so the answer costs the same at 3 devices or 3,000 and at any number of readings.
        """
        totals = (
            select(
                readings_daily.c.device_id,
                func.sum(readings_daily.c.n).label("n"),
                func.max(readings_daily.c.t_max).label("t_max"),
            )
            .group_by(readings_daily.c.device_id)
            .subquery()
        )
        query = (
            select(
                devices,
                totals.c.n,
                totals.c.t_max,
                readings.c.ts.label("last_ts"),
                readings.c.temperature.label("last_temperature"),
            )
            .outerjoin(totals, totals.c.device_id == devices.c.id)
            .outerjoin(
                readings,
                and_(readings.c.device_id == devices.c.id, readings.c.ts == devices.c.last_seen),
            )
            .order_by(devices.c.id)
        )
        return [
            {
                "device_id": row["id"],
                "name": row["name"],
                "latitude": row["latitude"],
                "longitude": row["longitude"],
                "first_seen": aware(row["first_seen"]),
                "last_seen": aware(row["last_seen"]),
                "count": int(row["n"] or 0),
                "max_temperature": row["t_max"],
                "last_temperature": row["last_temperature"],
                "last_ts": aware(row["last_ts"]) if row["last_ts"] is not None else None,
            }
            for row in self._run(lambda conn: conn.execute(query).mappings().all())
        ]

    def anomalous_readings(
        self, since: datetime, device_id: str | None = None, limit: int = 1000
    ) -> list[dict[str, Any]]:
        query = (
            select(*self._columns(*READING_COLUMNS))
            .where(readings.c.is_anomaly == FLAGGED, readings.c.ts >= naive_utc(since))
            .order_by(readings.c.ts.desc())
            .limit(limit)
        )
        if device_id is not None:
            query = query.where(readings.c.device_id == device_id)
        return self._rows(query)

    def readings_page(
        self,
        device_id: str,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 1000,
        after: datetime | None = None,
    ) -> list[dict[str, Any]]:
        """A device's readings in time order, `limit` at a time; page on with `after`."""
        conditions = [readings.c.device_id == device_id]
        if start is not None:
            conditions.append(readings.c.ts >= naive_utc(start))
        if end is not None:
            conditions.append(readings.c.ts < naive_utc(end))
        if after is not None:
            conditions.append(readings.c.ts > naive_utc(after))
        return self._rows(
            select(*self._columns(*READING_COLUMNS))
            .where(and_(*conditions))
            .order_by(readings.c.ts)
            .limit(limit)
        )

    def chart(
        self, device_id: str, start: datetime, end: datetime, resolution: str
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """A device's temperature from `start` to `end` as points of `ts, n, t_min, t_max,
        t_mean` (raw readings, minute rollups, hours folded from them, or daily rollups: every
        bucket that overlaps the range) and its flagged readings there (the chart marks them),
        read in one transaction."""
        points, marks = self._rows_many(
            self._series_query(device_id, start, end, resolution),
            self._anomalies_query(device_id, start, end, 500),
        )
        return _points(points), marks

    def _series_query(self, device_id: str, start: datetime, end: datetime, resolution: str) -> Any:
        lo, hi = naive_utc(start), naive_utc(end)
        if resolution == "raw":
            r = readings.c
            query = select(
                *self._columns(r.ts),
                literal(1).label("n"),
                r.temperature.label("t_min"),
                r.temperature.label("t_max"),
                r.temperature.label("t_mean"),
            ).where(r.device_id == device_id, r.ts >= lo, r.ts < hi)
            query = query.order_by(r.ts)
        elif resolution == "minute":
            m = readings_minute.c
            query = select(
                *self._columns(m.minute),
                m.n,
                m.t_min,
                m.t_max,
                (m.t_sum / m.n).label("t_mean"),
            ).where(
                m.device_id == device_id,
                m.minute >= lo.replace(second=0, microsecond=0),
                m.minute < hi,
            )
            query = query.order_by(m.minute)
        elif resolution == "hour":
            query = self._hourly(device_id, lo, hi)
        else:
            d = readings_daily.c
            query = select(
                d.day.label("ts"), d.n, d.t_min, d.t_max, (d.t_sum / d.n).label("t_mean")
            ).where(
                d.device_id == device_id,
                d.day >= lo.date(),
                d.day <= (hi - timedelta(microseconds=1)).date(),
            )
            query = query.order_by(d.day)
        return query

    def _hourly(self, device_id: str, lo: datetime, hi: datetime) -> Any:
        """Hours folded from the minute rollups inside the database (a week is 168 rows out)."""
        m = readings_minute.c
        if self.dialect == "sqlite":  # ISO text: its first 13 characters name the hour
            hour = func.substr(m.minute, 1, 13).concat(":00:00")
        else:
            hour = func.date_format(m.minute, "%Y-%m-%d %H:00:00")
        return (
            select(
                hour.label("ts"),
                func.sum(m.n).label("n"),
                func.min(m.t_min).label("t_min"),
                func.max(m.t_max).label("t_max"),
                (func.sum(m.t_sum) / func.sum(m.n)).label("t_mean"),
            )
            .where(
                m.device_id == device_id,
                m.minute >= lo.replace(minute=0, second=0, microsecond=0),
                m.minute < hi,
            )
            .group_by(hour)
            .order_by(hour)
        )

    def _anomalies_query(self, device_id: str, start: datetime, end: datetime, limit: int) -> Any:
        r = readings.c
        return (
            select(*self._columns(r.ts), r.temperature, r.anomaly_score, r.detector)
            .where(
                r.is_anomaly == FLAGGED,
                r.ts >= naive_utc(start),
                r.ts < naive_utc(end),
                r.device_id == device_id,
            )
            .order_by(r.ts)
            .limit(limit)
        )

    def full_scan_queries(self) -> dict[str, str]:
        """The original deployment's queries over weather_trans (full scans), for benchmarks."""
        day_of = (
            "CAST(strftime('%d', time) AS INTEGER)" if self.dialect == "sqlite" else "DAY(time)"
        )
        month_of = (
            "CAST(strftime('%m', time) AS INTEGER)" if self.dialect == "sqlite" else "MONTH(time)"
        )
        return {
            "devices": (
                "SELECT deviceid, COUNT(*), MAX(temperature), MAX(time) FROM weather_trans "
                "GROUP BY deviceid"
            ),
            "devicedata": "SELECT deviceid, COUNT(*) FROM weather_trans GROUP BY deviceid",
            "devicemax": "SELECT deviceid, MAX(temperature) FROM weather_trans GROUP BY deviceid",
            "daymax": (
                "SELECT deviceid, MAX(temperature) FROM weather_trans "
                f"WHERE {day_of} = :day AND {month_of} = :month GROUP BY deviceid"
            ),
            "deviceanomalies": (
                "SELECT deviceid, COUNT(*) FROM weather_trans "
                "WHERE isanomal = 1 AND time >= :since GROUP BY deviceid"
            ),
        }

    def run_sql(self, sql: str, **params: Any) -> list[tuple[Any, ...]]:
        """Run one literal read-only statement with bound parameters (benchmarks, tests)."""
        values = {k: naive_utc(v) if isinstance(v, datetime) else v for k, v in params.items()}
        return [tuple(r) for r in self._run(lambda conn: conn.execute(text(sql), values).all())]

    def _rows(self, query: Any) -> list[dict[str, Any]]:
        return self._rows_many(query)[0]

    def _rows_many(self, *queries: Any) -> list[list[dict[str, Any]]]:
        """Each query's rows as dicts, all read in one transaction (one pool checkout)."""

        def work(conn: Connection) -> list[tuple[list[str], Sequence[Any]]]:
            results = [conn.execute(query) for query in queries]
            return [(list(map(str, r.keys())), r.all()) for r in results]

        return [_plain_rows(keys, rows) for keys, rows in self._run(work)]

    def _columns(self, *columns: Any) -> list[Any]:
        """Columns to select, with SQLite's timestamps read as their text.

        SQLite keeps DateTime as ISO text and SQLAlchemy parses it with a regex; at thousands
        of rows per answer that was most of an endpoint's time. `_plain` parses the text with
        datetime.fromisoformat (C) instead. Other drivers hand datetimes over as they are.
        """
        if self.dialect == "sqlite":
            text_of: Callable[[Any], Any] = lambda c: type_coerce(c, String)  # noqa: E731
        elif self.dialect in ("mysql", "mariadb"):
            # PyMySQL parses DATETIME in Python; CAST AS CHAR + fromisoformat is ~5x cheaper.
            text_of = lambda c: cast(c, String)  # noqa: E731
        else:
            return list(columns)
        return [text_of(c).label(c.key) if isinstance(c.type, DateTime) else c for c in columns]

    # -- detection --------------------------------------------------------------------------------

    def device_ids(self) -> list[str]:
        return list(self._run(lambda conn: conn.execute(select(devices.c.id)).scalars().all()))

    def devices_last_seen(self) -> dict[str, datetime]:
        """Each device's newest reading time, in one query (the detector skips idle devices)."""
        rows = self._run(lambda conn: conn.execute(select(devices.c.id, devices.c.last_seen)).all())
        return {device_id: aware(last_seen) for device_id, last_seen in rows}

    def detector_states(self, detector: str) -> dict[str, tuple[datetime, bytes]]:
        query = select(detector_state).where(detector_state.c.detector == detector)
        return {
            row["device_id"]: (aware(row["last_ts"]), row["state"])
            for row in self._run(lambda conn: conn.execute(query).mappings().all())
        }

    def readings_after(self, device_id: str, after: datetime | None, limit: int) -> list[Row]:
        """The next readings of a device for the detector, oldest first, with when each was
        stored: (id, ts, temperature, received_at)."""
        return self.readings_after_many({device_id: after}, limit)[device_id]

    def readings_after_many(
        self, cursors: Mapping[str, datetime | None], limit: int
    ) -> dict[str, list[Row]]:
        """readings_after for many devices (up to `limit` each) in one transaction."""
        columns = (readings.c.id, readings.c.ts, readings.c.temperature, readings.c.received_at)
        first = select(*columns).where(readings.c.device_id == bindparam("device"))
        later = first.where(readings.c.ts > bindparam("after"))
        first = first.order_by(readings.c.ts).limit(limit)
        later = later.order_by(readings.c.ts).limit(limit)

        def work(conn: Connection) -> dict[str, list[Row]]:
            out = {}
            for device, after in cursors.items():
                if after is None:
                    rows = conn.execute(first, {"device": device})
                else:
                    rows = conn.execute(later, {"device": device, "after": naive_utc(after)})
                out[device] = [(int(i), aware(ts), float(t), aware(r)) for i, ts, t, r in rows]
            return out

        return self._run(work)

    def save_detection(
        self,
        detector: str,
        device_id: str,
        last_ts: datetime,
        state: bytes,
        results: Sequence[Scored],
    ) -> None:
        """Write scores and flags and the detector's new state in one transaction (idempotent)."""
        self.save_detections(detector, [Detection(device_id, last_ts, state, results)])

    def save_detections(self, detector: str, passes: Sequence[Detection]) -> None:
        """save_detection for many devices, in one transaction."""
        now = naive_utc(datetime.now(UTC))
        results = [s for p in passes for s in p.results]
        states = [
            {
                "device_id": p.device_id,
                "detector": detector,
                "last_ts": naive_utc(p.last_ts),
                "state": p.state,
                "updated_at": now,
            }
            for p in passes
        ]

        def work(conn: Connection) -> None:
            if results and self.dialect in ("mysql", "mariadb"):
                bulk.write_scores(
                    conn, detector, ((s.reading_id, s.is_anomaly, s.score) for s in results)
                )
            elif results:
                conn.execute(
                    update(readings)
                    .where(readings.c.id == bindparam("rid"))
                    .values(
                        is_anomaly=bindparam("flag"),
                        anomaly_score=bindparam("score"),
                        detector=detector,
                    ),
                    [
                        {"rid": s.reading_id, "flag": s.is_anomaly, "score": s.score}
                        for s in results
                    ],
                )
            if states:
                conn.execute(self._state_upsert(), states)

        self._run(work)

    def _state_upsert(self) -> Any:
        """INSERT of detector_state rows that replaces a device's stored position and state."""
        if self.dialect in ("mysql", "mariadb"):
            my = mysql.insert(detector_state)
            return my.on_duplicate_key_update(
                last_ts=my.inserted.last_ts,
                state=my.inserted.state,
                updated_at=my.inserted.updated_at,
            )
        lite = (sqlite.insert if self.dialect == "sqlite" else postgresql.insert)(detector_state)
        return lite.on_conflict_do_update(
            index_elements=["device_id", "detector"],
            set_={
                "last_ts": lite.excluded.last_ts,
                "state": lite.excluded.state,
                "updated_at": lite.excluded.updated_at,
            },
        )

    # -- ground truth of injected anomalies -------------------------------------------------------

    def record_injected(self, rows: Iterable[tuple[str, str, datetime, datetime]]) -> None:
        values = [
            {"device_id": d, "kind": k, "start_ts": naive_utc(s), "end_ts": naive_utc(e)}
            for d, k, s, e in rows
        ]
        if values:
            self._run(lambda conn: conn.execute(insert(injected_anomalies), values))

    def injected(self) -> list[dict[str, Any]]:
        return self._rows(select(injected_anomalies).order_by(injected_anomalies.c.start_ts))

    def flagged(self, detector: str | None = None) -> list[tuple[str, datetime]]:
        query = select(readings.c.device_id, readings.c.ts).where(readings.c.is_anomaly == FLAGGED)
        if detector:
            query = query.where(readings.c.detector == detector)
        return [(d, aware(ts)) for d, ts in self._run(lambda conn: conn.execute(query).all())]

    # -- dead letters and status ------------------------------------------------------------------

    def dead_letters(
        self,
        limit: int = 100,
        pending_only: bool = True,
        after_id: int | None = None,
        ids: Sequence[int] | None = None,
    ) -> list[dict[str, Any]]:
        """Dead letters in id order; page on with `after_id`, or pick some by `ids`."""
        query = select(dead_letters).order_by(dead_letters.c.id).limit(limit)
        if pending_only:
            query = query.where(dead_letters.c.replayed_at.is_(None))
        if after_id is not None:
            query = query.where(dead_letters.c.id > after_id)
        if ids is not None:
            query = query.where(dead_letters.c.id.in_(list(ids)))
        rows = self._rows(query)
        for row in rows:
            row["attributes"] = orjson.loads(row["attributes"]) if row["attributes"] else {}
        return rows

    def pending_dead_letters(self) -> int:
        """How many dead letters were not replayed yet."""
        query = (
            select(func.count())
            .select_from(dead_letters)
            .where(dead_letters.c.replayed_at.is_(None))
        )
        return int(self._run(lambda conn: conn.execute(query).scalar()) or 0)

    def mark_replayed(self, ids: Sequence[int]) -> None:
        now = naive_utc(datetime.now(UTC))
        self._run(
            lambda conn: conn.execute(
                update(dead_letters).where(dead_letters.c.id.in_(list(ids))).values(replayed_at=now)
            )
        )

    def totals(self) -> dict[str, int]:
        def work(conn: Connection) -> dict[str, int]:
            stored = conn.execute(select(func.coalesce(func.sum(readings_daily.c.n), 0))).scalar()
            dead = conn.execute(select(func.count()).select_from(dead_letters)).scalar()
            flagged = conn.execute(
                select(func.count()).select_from(readings).where(readings.c.is_anomaly == FLAGGED)
            ).scalar()
            return {
                "stored": int(stored or 0),
                "dead_letters": int(dead or 0),
                "anomalies": int(flagged or 0),
            }

        return self._run(work)

    def detector_positions(self) -> list[dict[str, Any]]:
        return self._rows(
            select(detector_state.c.device_id, detector_state.c.detector, detector_state.c.last_ts)
        )


def _distinct(batch: Sequence[Reading]) -> list[Reading]:
    """The batch with each key once (its first reading), in order."""
    return list({r.key: r for r in reversed(batch)}.values())[::-1]


def _fold(acc: dict[Any, list[float]], key: Any, value: float) -> None:
    """Add `value` into the (count, min, max, sum) kept under `key`: one rollup cell."""
    agg = acc.get(key)
    if agg is None:
        acc[key] = [1, value, value, value]
    else:
        agg[0] += 1
        agg[1] = min(agg[1], value)
        agg[2] = max(agg[2], value)
        agg[3] += value


def _reading_row(r: Reading, received: datetime) -> dict[str, Any]:
    return {
        "device_id": r.device_id,
        "ts": naive_utc(r.ts),
        "temperature": r.temperature,
        "latitude": r.latitude,
        "longitude": r.longitude,
        "seq": r.seq,
        "received_at": received,
    }


def _dead_row(d: DeadLetter, received: datetime) -> dict[str, Any]:
    attributes = orjson.dumps(dict(d.attributes)).decode() if d.attributes else None
    return {
        "data": d.data,
        "attributes": attributes,
        "reason": d.reason[:500],
        "received_at": received,
    }


def _plain(row: Mapping[Any, Any]) -> dict[str, Any]:
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


def _points(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Series rows with `ts` always an aware datetime (minute rows and days renamed)."""
    for row in rows:
        if "minute" in row:
            row["ts"] = row.pop("minute")
        elif not isinstance(row["ts"], datetime):  # a day: its midnight, UTC
            row["ts"] = datetime(row["ts"].year, row["ts"].month, row["ts"].day, tzinfo=UTC)
    return rows


def _plain_rows(keys: list[str], rows: Sequence[Sequence[Any]]) -> list[dict[str, Any]]:
    """Rows as dicts like `_plain`, choosing each column's conversion once (answers of
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


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:300]
