"""The ingest and detection hot paths: MySQL/MariaDB writes as literal multi-row SQL, SQLite
writes as executemany of plain tuples, both rendered before their transaction begins.

Why literal SQL: through SQLAlchemy's executemany, PyMySQL escapes every value of every row
in Python (about 70% of ingest's time at 2,000-row batches), and a statement with anything but
placeholders inside VALUES silently becomes one round trip per row. Here every value is a
validated float, int, datetime or a UUID-shaped string, so rendering it is a cheap f-string;
anything else still goes through the driver's escaping. The statements are sent with
`no_parameters`, so the driver does no `%` interpolation either. On SQLite the cost was
SQLAlchemy's per-row parameter processing; sqlite3's own executemany loops in C.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from itertools import chain
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from pymysql.converters import escape_string

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from weatherpipe.reading import Reading

# Rows per statement: about 150 bytes each, far below max_allowed_packet (16 MiB by default).
ROWS_PER_STATEMENT = 5000
# SQLite (3.32 and later) takes up to 32,766 parameters per statement: 4,000 rows of 7.
SQLITE_ROWS_PER_STATEMENT = 4000
# Up to this many scores go in one UPDATE … CASE; more go through a temporary table.
SMALL_SCORE_BATCH = 64
_KEY = itemgetter(0, 1)  # (device_id, ts) of a rendered reading row
# Strings made only of these characters need no escaping (UUIDs, detector names).
_PLAIN = re.compile(r"[0-9A-Za-z_.:\- ]*")

_READINGS = (
    "INSERT INTO readings (device_id, ts, temperature, latitude, longitude, seq, received_at) "
    "VALUES "
)
_ROLLUP_UPDATE = (
    " ON DUPLICATE KEY UPDATE n = n + VALUES(n), t_sum = t_sum + VALUES(t_sum), "
    "t_min = LEAST(t_min, VALUES(t_min)), t_max = GREATEST(t_max, VALUES(t_max))"
)
_MINUTE = "INSERT INTO readings_minute (device_id, minute, n, t_min, t_max, t_sum) VALUES "
_DAILY = (
    "INSERT INTO readings_daily (device_id, day, year, month, dom, n, t_min, t_max, t_sum) VALUES "
)
_DEVICES = "INSERT INTO devices (id, name, latitude, longitude, first_seen, last_seen) VALUES "
_DEVICES_UPDATE = (
    " ON DUPLICATE KEY UPDATE first_seen = LEAST(first_seen, VALUES(first_seen)), "
    "last_seen = GREATEST(last_seen, VALUES(last_seen)), "
    "latitude = VALUES(latitude), longitude = VALUES(longitude)"
)
# Detection writes its scores into a session-private table, then one UPDATE joins them in.
_SCORES_TABLE = (
    "CREATE TEMPORARY TABLE IF NOT EXISTS wp_scores "
    "(id BIGINT PRIMARY KEY, flag BOOLEAN NOT NULL, score DOUBLE NOT NULL) ENGINE=MEMORY"
)
_SCORES = "INSERT INTO wp_scores (id, flag, score) VALUES "
_APPLY_SCORES = (
    "UPDATE readings JOIN wp_scores ON readings.id = wp_scores.id "
    "SET readings.is_anomaly = wp_scores.flag, readings.anomaly_score = wp_scores.score, "
    "readings.detector = {detector}"
)


def quote(value: str) -> str:
    """A SQL string literal; UUIDs and names take the fast way, the rest is escaped."""
    if _PLAIN.fullmatch(value):
        return f"'{value}'"
    return f"'{escape_string(value)}'"


def number(value: float) -> str:
    """A float literal that reads back as the very same double (repr round-trips)."""
    if type(value) is not float:
        value = float(value)
    if value - value != 0.0:  # inf and nan; cheaper than math.isfinite on the hot path
        raise ValueError(f"cannot store a non-finite number {value!r}")
    return repr(value)


def stamp(ts: datetime) -> str:
    """A DATETIME(3) literal in UTC: 'YYYY-MM-DD HH:MM:SS.mmm'."""
    if ts.tzinfo is not None:
        ts = ts.astimezone(UTC).replace(tzinfo=None)
    return ts.isoformat(" ", "milliseconds")


# One write of a batch: literal SQL (rows None), or SQL with placeholders and its rows.
Statement = tuple[str, Sequence[tuple[Any, ...]] | None]


def run(conn: Connection, statements: Iterable[Statement]) -> None:
    """Execute rendered statements in `conn`'s transaction."""
    for sql, rows in statements:
        if rows is None:
            conn.exec_driver_sql(sql, execution_options={"no_parameters": True})
        else:
            conn.exec_driver_sql(sql, rows)


def _literal(head: str, rows: Sequence[str], tail: str = "") -> list[Statement]:
    return [
        (head + ",".join(rows[first : first + ROWS_PER_STATEMENT]) + tail, None)
        for first in range(0, len(rows), ROWS_PER_STATEMENT)
    ]


def render_readings(batch: Sequence[Reading], received: datetime) -> list[Statement]:
    """Readings, their minute and daily rollups and the devices they touch, as plain
    multi-row INSERTs for MySQL/MariaDB (so a stored key raises IntegrityError).

    Pure: ingest renders a batch while the previous one is being written.
    """
    received_sql = stamp(received)
    texts = _stamped(batch, stamp)
    # A fleet's readings share timestamps and each device its id: render each once.
    ids = {device: quote(device) for device in {r.device_id for r in batch}}
    rows = [
        f"({ids[r.device_id]},'{ts}',{number(r.temperature)},{number(r.latitude)},"
        f"{number(r.longitude)},{'NULL' if r.seq is None else int(r.seq)},'{received_sql}')"
        for r, ts in zip(batch, texts, strict=True)
    ]
    minutes = _minute_cells(batch, texts)
    days, spans = _days_and_spans(minutes)
    # Rollup and device rows in key order, so concurrent writers lock them in the same order
    # and wait for each other rather than deadlock.
    return [
        *_literal(_READINGS, rows),
        *_literal(
            _MINUTE,
            [
                f"({ids[d]},'{m}:00',{c[0]},{number(c[1])},{number(c[2])},{number(c[3])})"
                for (d, m), c in sorted(minutes.items())
            ],
            _ROLLUP_UPDATE,
        ),
        *_literal(
            _DAILY,
            [
                f"({ids[d]},'{day}',{day[:4]},{int(day[5:7])},{int(day[8:10])},{c[0]},"
                f"{number(c[1])},{number(c[2])},{number(c[3])})"
                for (d, day), c in sorted(days.items())
            ],
            _ROLLUP_UPDATE,
        ),
        *_literal(
            _DEVICES,
            [
                f"({ids[d]},NULL,{number(s[2])},{number(s[3])},'{s[0]}','{s[1]}')"
                for d, s in sorted(spans.items())
            ],
            _DEVICES_UPDATE,
        ),
    ]


def write_scores(
    conn: Connection, detector: str, results: Iterable[tuple[int, bool, float]]
) -> None:
    """Scores and flags of stored readings by id: one multi-row INSERT into a temporary
    table and one UPDATE … JOIN, instead of one UPDATE round trip per reading."""
    scored = [(int(rid), 1 if flag else 0, number(score)) for rid, flag, score in results]
    if not scored:
        return
    options = {"no_parameters": True}
    if len(scored) <= SMALL_SCORE_BATCH:
        # A real-time pass has a reading or two per device: one statement, one round trip.
        flags = " ".join(f"WHEN {rid} THEN {flag}" for rid, flag, _ in scored)
        scores = " ".join(f"WHEN {rid} THEN {score}" for rid, _, score in scored)
        ids = ",".join(str(rid) for rid, _, _ in scored)
        conn.exec_driver_sql(
            f"UPDATE readings SET is_anomaly = CASE id {flags} END, "
            f"anomaly_score = CASE id {scores} END, detector = {quote(detector)} "
            f"WHERE id IN ({ids})",
            execution_options=options,
        )
        return
    rows = [f"({rid},{flag},{score})" for rid, flag, score in scored]
    conn.exec_driver_sql(_SCORES_TABLE, execution_options=options)
    conn.exec_driver_sql("DELETE FROM wp_scores", execution_options=options)
    run(conn, _literal(_SCORES, rows))
    conn.exec_driver_sql(_APPLY_SCORES.format(detector=quote(detector)), execution_options=options)


def _stamped(batch: Sequence[Reading], render: Callable[[datetime], str]) -> list[str]:
    """Each reading's timestamp as text; each distinct instant is rendered once."""
    cache: dict[datetime, str] = {}
    return [cache.get(r.ts) or cache.setdefault(r.ts, render(r.ts)) for r in batch]


def _minute_cells(
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


def _days_and_spans(
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


_SQLITE_READINGS = (
    "INSERT INTO readings (device_id, ts, temperature, latitude, longitude, seq, received_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_SQLITE_ROLLUP_UPDATE = (
    " ON CONFLICT ({keys}) DO UPDATE SET n = n + excluded.n, t_sum = t_sum + excluded.t_sum, "
    "t_min = min(t_min, excluded.t_min), t_max = max(t_max, excluded.t_max)"
)
_SQLITE_MINUTE = (
    "INSERT INTO readings_minute (device_id, minute, n, t_min, t_max, t_sum) "
    "VALUES (?, ?, ?, ?, ?, ?)" + _SQLITE_ROLLUP_UPDATE.format(keys="device_id, minute")
)
_SQLITE_DAILY = (
    "INSERT INTO readings_daily (device_id, day, year, month, dom, n, t_min, t_max, t_sum) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)" + _SQLITE_ROLLUP_UPDATE.format(keys="device_id, day")
)
_SQLITE_DEVICES = (
    "INSERT INTO devices (id, name, latitude, longitude, first_seen, last_seen) "
    "VALUES (?, NULL, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
    "first_seen = min(first_seen, excluded.first_seen), "
    "last_seen = max(last_seen, excluded.last_seen), "
    "latitude = excluded.latitude, longitude = excluded.longitude"
)


def sqlite_stamp(ts: datetime) -> str:
    """SQLAlchemy's SQLite DATETIME text, 'YYYY-MM-DD HH:MM:SS.ffffff', in UTC."""
    if ts.tzinfo is not None:
        ts = ts.astimezone(UTC).replace(tzinfo=None)
    return ts.isoformat(" ", "microseconds")


def _sqlite_many_rows(sql: str, rows: list[tuple[Any, ...]]) -> list[Statement]:
    """`sql` (one row of placeholders) as statements of many rows each, where SQLite allows
    that many parameters. sqlite3 lets other threads run while a statement executes, and
    executemany executes once per row: one statement per 4,000 rows lets ingest decode the
    next batch meanwhile (about 15% more throughput)."""
    if sqlite3.sqlite_version_info < (3, 32, 0) or not rows:  # before 3.32: 999 parameters
        return [(sql, rows)]
    head, placeholders = sql.split(" VALUES ")
    statements: list[Statement] = []
    for first in range(0, len(rows), SQLITE_ROWS_PER_STATEMENT):
        chunk = rows[first : first + SQLITE_ROWS_PER_STATEMENT]
        values = ",".join([placeholders] * len(chunk))
        statements.append((f"{head} VALUES {values}", [tuple(chain.from_iterable(chunk))]))
    return statements


def render_readings_sqlite(batch: Sequence[Reading], received: datetime) -> list[Statement]:
    """The same writes as render_readings, for SQLite: executemany rows."""
    received_text = sqlite_stamp(received)
    texts = _stamped(batch, sqlite_stamp)
    rows = [
        (r.device_id, ts, r.temperature, r.latitude, r.longitude, r.seq, received_text)
        for r, ts in zip(batch, texts, strict=True)
    ]
    # In key order, SQLite fills its unique index about 20% faster. By the key alone: two
    # copies of a key may differ in seq only, and None and int do not compare.
    rows.sort(key=_KEY)
    minutes = _minute_cells(batch, texts)
    days, spans = _days_and_spans(minutes)
    return [
        *_sqlite_many_rows(_SQLITE_READINGS, rows),
        (
            _SQLITE_MINUTE,
            [(d, f"{m}:00.000000", *c[:4]) for (d, m), c in sorted(minutes.items())],
        ),
        (
            _SQLITE_DAILY,
            [
                (d, day, int(day[:4]), int(day[5:7]), int(day[8:10]), *c)
                for (d, day), c in sorted(days.items())
            ],
        ),
        (_SQLITE_DEVICES, [(d, s[2], s[3], s[0], s[1]) for d, s in sorted(spans.items())]),
    ]
