"""The ingest and detection hot paths: MySQL/MariaDB writes as literal multi-row SQL, SQLite
writes as executemany of plain tuples.

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
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pymysql.converters import escape_string

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from weatherpipe.reading import Reading

# Rows per statement: about 150 bytes each, far below max_allowed_packet (16 MiB by default).
ROWS_PER_STATEMENT = 5000
# Up to this many scores go in one UPDATE … CASE; more go through a temporary table.
SMALL_SCORE_BATCH = 64
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


def _send(conn: Connection, head: str, rows: Sequence[str], tail: str = "") -> None:
    for first in range(0, len(rows), ROWS_PER_STATEMENT):
        sql = head + ",".join(rows[first : first + ROWS_PER_STATEMENT]) + tail
        conn.exec_driver_sql(sql, execution_options={"no_parameters": True})


def write_readings(conn: Connection, batch: Iterable[Reading], received: datetime) -> None:
    """Readings, their minute and daily rollups and the devices they touch, in `conn`'s
    transaction: plain multi-row INSERTs, so a stored key raises IntegrityError."""
    received_sql = f"'{stamp(received)}'"
    rows: list[str] = []
    minutes: dict[tuple[str, str], list[float]] = {}
    days: dict[tuple[str, str], list[float]] = {}
    seen: dict[str, list[str]] = {}
    # A fleet's readings share timestamps and each device its place: render each once.
    stamps: dict[datetime, str] = {}
    places: dict[tuple[str, float, float], tuple[str, str, str]] = {}
    for r in batch:
        place = places.get((r.device_id, r.latitude, r.longitude))
        if place is None:
            place = (quote(r.device_id), number(r.latitude), number(r.longitude))
            places[(r.device_id, r.latitude, r.longitude)] = place
        device, lat, lon = place
        ts = stamps.get(r.ts)
        if ts is None:
            ts = stamps[r.ts] = stamp(r.ts)
        t = number(r.temperature)
        seq = "NULL" if r.seq is None else str(int(r.seq))
        rows.append(f"({device},'{ts}',{t},{lat},{lon},{seq},{received_sql})")
        fold(minutes, (device, ts[:16]), r.temperature)
        fold(days, (device, ts[:10]), r.temperature)
        _span(seen, device, ts, lat, lon)
    _send(conn, _READINGS, rows)
    _send(conn, _MINUTE, _minute_rows(minutes), _ROLLUP_UPDATE)
    _send(conn, _DAILY, _day_rows(days), _ROLLUP_UPDATE)
    device_rows = [f"({d},NULL,{a[2]},{a[3]},'{a[0]}','{a[1]}')" for d, a in sorted(seen.items())]
    _send(conn, _DEVICES, device_rows, _DEVICES_UPDATE)


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
    _send(conn, _SCORES, rows)
    conn.exec_driver_sql(_APPLY_SCORES.format(detector=quote(detector)), execution_options=options)


def fold(acc: dict[Any, list[float]], key: Any, value: float) -> None:
    """Add `value` into the (count, min, max, sum) kept under `key`: one rollup cell."""
    agg = acc.get(key)
    if agg is None:
        acc[key] = [1, value, value, value]
    else:
        agg[0] += 1
        agg[1] = min(agg[1], value)
        agg[2] = max(agg[2], value)
        agg[3] += value


def _span(seen: dict[str, list[Any]], device: str, ts: str, lat: Any, lon: Any) -> None:
    """First and last timestamp of a device in the batch, and its location at the last one."""
    span = seen.get(device)
    if span is None:
        seen[device] = [ts, ts, lat, lon]
        return
    span[0] = min(span[0], ts)
    if ts > span[1]:  # same-width ISO strings compare like the instants they name
        span[1], span[2], span[3] = ts, lat, lon


def _minute_rows(minutes: dict[tuple[str, str], list[float]]) -> list[str]:
    # Sorted, so two ingest processes lock rollup rows in the same order (no deadlock cycles).
    return [
        f"({d},'{m}:00',{int(a[0])},{number(a[1])},{number(a[2])},{number(a[3])})"
        for (d, m), a in sorted(minutes.items())
    ]


def _day_rows(days: dict[tuple[str, str], list[float]]) -> list[str]:
    return [
        f"({d},'{day}',{int(day[:4])},{int(day[5:7])},{int(day[8:10])},{int(a[0])},"
        f"{number(a[1])},{number(a[2])},{number(a[3])})"
        for (d, day), a in sorted(days.items())
    ]


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


def write_readings_sqlite(conn: Connection, batch: Iterable[Reading], received: datetime) -> None:
    """The same writes as write_readings, for SQLite, in `conn`'s transaction."""
    received_text = sqlite_stamp(received)
    rows: list[tuple[object, ...]] = []
    minutes: dict[tuple[str, str], list[float]] = {}
    days: dict[tuple[str, str], list[float]] = {}
    seen: dict[str, list[Any]] = {}
    stamps: dict[datetime, str] = {}
    for r in batch:
        ts = stamps.get(r.ts)
        if ts is None:
            ts = stamps[r.ts] = sqlite_stamp(r.ts)
        rows.append((r.device_id, ts, r.temperature, r.latitude, r.longitude, r.seq, received_text))
        fold(minutes, (r.device_id, ts[:16]), r.temperature)
        fold(days, (r.device_id, ts[:10]), r.temperature)
        _span(seen, r.device_id, ts, r.latitude, r.longitude)
    conn.exec_driver_sql(_SQLITE_READINGS, rows)
    conn.exec_driver_sql(
        _SQLITE_MINUTE,
        [
            (d, f"{m}:00.000000", int(a[0]), a[1], a[2], a[3])
            for (d, m), a in sorted(minutes.items())
        ],
    )
    conn.exec_driver_sql(
        _SQLITE_DAILY,
        [
            (d, day, int(day[:4]), int(day[5:7]), int(day[8:10]), int(a[0]), a[1], a[2], a[3])
            for (d, day), a in sorted(days.items())
        ],
    )
    conn.exec_driver_sql(
        _SQLITE_DEVICES, [(d, a[2], a[3], a[0], a[1]) for d, a in sorted(seen.items())]
    )
