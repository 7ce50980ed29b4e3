"""MySQL and MariaDB through PyMySQL: ingest and detection writes as literal multi-row SQL.

Why literal SQL: through SQLAlchemy's executemany, PyMySQL escapes every value of every row
in Python (about 70% of ingest's time at 2,000-row batches), and a statement with anything but
placeholders inside VALUES silently becomes one round trip per row. Here every value is a
validated float, int, datetime or a UUID-shaped string, so rendering it is a cheap f-string;
anything else still goes through the driver's escaping. The statements are sent with
`no_parameters`, so the driver does no `%` interpolation either.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pymysql.converters import escape_string
from sqlalchemy import String, Table, bindparam, cast, create_engine, func, text
from sqlalchemy.dialects.mysql import insert
from sqlalchemy.exc import DBAPIError

from weatherpipe.storage.dialects.base import (
    STATE_REPLACED,
    Dialect,
    Statement,
    Statements,
    as_text,
    days_and_spans,
    minute_cells,
    number,
    run,
    stamp,
    stamped,
)
from weatherpipe.storage.faults import Fault, names_readings_key
from weatherpipe.storage.tables import dead_letters, detector_state

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine
    from sqlalchemy.engine import URL
    from sqlalchemy.sql.elements import ColumnElement

    from weatherpipe.reading import Reading
    from weatherpipe.storage.rows import Scored

# Rows per statement: about 150 bytes each, far below max_allowed_packet (16 MiB by default).
ROWS_PER_STATEMENT = 5000
# Up to this many scores go in one UPDATE … CASE; more go through a temporary table.
SMALL_SCORE_BATCH = 64
# Strings made only of these characters need no escaping (UUIDs, detector names).
_PLAIN = re.compile(r"[0-9A-Za-z_.:\- ]*")
# MySQL: 1213 deadlock, 1205 lock wait timeout.
# What MySQL / MariaDB error numbers (server 1xxx-4xxx, client 2xxx) mean; see faults.py.
_CONFLICT = frozenset({1205, 1213})  # lock wait timeout, deadlock
_UNAVAILABLE = frozenset(
    {
        1021, 1030, 1037, 1038, 1040, 1041, 1044, 1045, 1053, 1081, 1114, 1129, 1135, 1142,
        1152, 1158, 1159, 1160, 1161, 1184, 1203, 1226, 1290, 1317, 1792, 1836, 1927, 1969,
        2002, 2003, 2005, 2006, 2011, 2013, 2014, 2026, 2055, 3024, 4031,
    }
)  # fmt: skip
_DATA = frozenset(
    {
        1048, 1101, 1118, 1153, 1264, 1265, 1292, 1300, 1365, 1366, 1367, 1406, 1411, 1416,
        1441, 1451, 1452, 1644, 1690, 3140, 3819, 4025,
    }
)  # fmt: skip
_DUPLICATE = frozenset({1062, 1586})

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
    # COALESCE: a device provisioned ahead has no first/last reading yet (NULL), and
    # LEAST/GREATEST with a NULL are NULL on MySQL.
    " ON DUPLICATE KEY UPDATE first_seen = LEAST(COALESCE(first_seen, VALUES(first_seen)), "
    "VALUES(first_seen)), "
    "last_seen = GREATEST(COALESCE(last_seen, VALUES(last_seen)), VALUES(last_seen)), "
    "latitude = VALUES(latitude), longitude = VALUES(longitude)"
)
# Detection writes its scores into a session-private table, then one UPDATE joins them in.
_SCORES_TABLE = (
    "CREATE TEMPORARY TABLE IF NOT EXISTS wp_scores "
    "(id BIGINT PRIMARY KEY, flag BOOLEAN NOT NULL, score DOUBLE NOT NULL, "
    "kind VARCHAR(10) NULL, severity VARCHAR(10) NULL) ENGINE=MEMORY"
)
_SCORES = "INSERT INTO wp_scores (id, flag, score, kind, severity) VALUES "
_APPLY_SCORES = (
    "UPDATE readings JOIN wp_scores ON readings.id = wp_scores.id "
    "SET readings.is_anomaly = wp_scores.flag, readings.anomaly_score = wp_scores.score, "
    "readings.kind = wp_scores.kind, readings.severity = wp_scores.severity, "
    "readings.detector = {detector}"
)


def _label(value: str) -> str:
    """A flag's kind or severity as a SQL literal; "" (not an onset) is NULL."""
    return quote(value) if value else "NULL"


def _case(scored: list[tuple[int, int, str, str, str]], column: int) -> str:
    """CASE id … END of one label column: NULL for every id it does not name."""
    whens = " ".join(f"WHEN {row[0]} THEN {row[column]}" for row in scored if row[column] != "NULL")
    return f"CASE id {whens} END" if whens else "NULL"


def quote(value: str) -> str:
    """A SQL string literal; UUIDs and names take the fast way, the rest is escaped."""
    if _PLAIN.fullmatch(value):
        return f"'{value}'"
    return f"'{escape_string(value)}'"


def _literal(head: str, rows: Sequence[str], tail: str = "") -> list[Statement]:
    return [
        (head + ",".join(rows[first : first + ROWS_PER_STATEMENT]) + tail, None)
        for first in range(0, len(rows), ROWS_PER_STATEMENT)
    ]


class MySQLDialect(Dialect):
    name = "mysql"

    def create_engine(self, url: URL) -> Engine:
        return create_engine(url, pool_pre_ping=True, pool_recycle=3600, pool_size=5)

    def render(self, batch: Sequence[Reading], received: datetime) -> Statements:
        """Readings, their minute and daily rollups and the devices they touch, as plain
        multi-row INSERTs (so a stored key raises IntegrityError)."""
        received_sql = stamp(received)
        texts = stamped(batch, stamp)
        # A fleet's readings share timestamps and each device its id: render each once.
        ids = {device: quote(device) for device in {r.device_id for r in batch}}
        rows = [
            f"({ids[r.device_id]},'{ts}',{number(r.temperature)},{number(r.latitude)},"
            f"{number(r.longitude)},{'NULL' if r.seq is None else int(r.seq)},'{received_sql}')"
            for r, ts in zip(batch, texts, strict=True)
        ]
        minutes = minute_cells(batch, texts)
        days, spans = days_and_spans(minutes)
        # Rollup and device rows in key order, so concurrent writers lock them in the same
        # order and wait for each other rather than deadlock.
        minute_rows = [
            f"({ids[d]},'{m}:00',{c[0]},{number(c[1])},{number(c[2])},{number(c[3])})"
            for (d, m), c in sorted(minutes.items())
        ]
        day_rows = [
            f"({ids[d]},'{day}',{day[:4]},{int(day[5:7])},{int(day[8:10])},{c[0]},"
            f"{number(c[1])},{number(c[2])},{number(c[3])})"
            for (d, day), c in sorted(days.items())
        ]
        device_rows = [
            f"({ids[d]},NULL,{number(s[2])},{number(s[3])},'{s[0]}','{s[1]}')"
            for d, s in sorted(spans.items())
        ]
        statements = [
            *_literal(_READINGS, rows),
            *_literal(_MINUTE, minute_rows, _ROLLUP_UPDATE),
            *_literal(_DAILY, day_rows, _ROLLUP_UPDATE),
            *_literal(_DEVICES, device_rows, _DEVICES_UPDATE),
        ]
        return Statements(statements, len(rows))

    def write(self, conn: Connection, rendered: Statements) -> int:
        run(conn, rendered.statements)
        return rendered.readings

    def write_scores(self, conn: Connection, detector: str, results: Sequence[Scored]) -> None:
        """One multi-row INSERT into a temporary table and one UPDATE … JOIN, instead of one
        UPDATE round trip per reading. A flag's kind and severity go with it ("": NULL)."""
        scored = [
            (
                int(s.reading_id),
                1 if s.is_anomaly else 0,
                number(s.score),
                _label(s.kind),
                _label(s.severity),
            )
            for s in results
        ]
        if not scored:
            return
        options = {"no_parameters": True}
        if len(scored) <= SMALL_SCORE_BATCH:
            # A real-time pass has a reading or two per device: one statement, one round trip.
            flags = " ".join(f"WHEN {rid} THEN {flag}" for rid, flag, *_ in scored)
            scores = " ".join(f"WHEN {rid} THEN {score}" for rid, _, score, *_ in scored)
            ids = ",".join(str(row[0]) for row in scored)
            conn.exec_driver_sql(
                f"UPDATE readings SET is_anomaly = CASE id {flags} END, "
                f"anomaly_score = CASE id {scores} END, detector = {quote(detector)}, "
                f"kind = {_case(scored, 3)}, severity = {_case(scored, 4)} "
                f"WHERE id IN ({ids})",
                execution_options=options,
            )
            return
        rows = [f"({rid},{flag},{score},{kind},{sev})" for rid, flag, score, kind, sev in scored]
        conn.exec_driver_sql(_SCORES_TABLE, execution_options=options)
        conn.exec_driver_sql("DELETE FROM wp_scores", execution_options=options)
        run(conn, _literal(_SCORES, rows))
        apply = _APPLY_SCORES.format(detector=quote(detector))
        conn.exec_driver_sql(apply, execution_options=options)

    def state_upsert(self) -> Any:
        my = insert(detector_state)
        return my.on_duplicate_key_update({c: my.inserted[c] for c in STATE_REPLACED})

    def dead_letter_insert(self) -> Any:
        """A no-op ON DUPLICATE KEY UPDATE, not INSERT IGNORE (which would turn a value too
        long or out of range into a warning and store it cut); PyMySQL still sends the rows
        as one multi-row INSERT (only placeholders inside VALUES)."""
        my = insert(dead_letters)
        return my.on_duplicate_key_update(message_key=dead_letters.c.message_key)

    def hour(self, minute: ColumnElement[Any]) -> ColumnElement[Any]:
        return func.date_format(minute, "%Y-%m-%d %H:00:00")

    def delete_oldest(self, table: Table, column: str, by_device: bool, limit: int) -> Any:
        """DELETE … ORDER BY … LIMIT: MySQL and MariaDB refuse LIMIT in an IN subquery, and
        take it on a DELETE instead, walking the index on (device_id, column) in order."""
        device = "device_id = :device_id AND " if by_device else ""
        statement = text(
            f"DELETE FROM {table.name} WHERE {device}{column} < :cutoff "
            f"ORDER BY {column} LIMIT {int(limit)}"
        ).bindparams(bindparam("cutoff", type_=table.c[column].type))
        if by_device:
            statement = statement.bindparams(bindparam("device_id", type_=table.c.device_id.type))
        return statement

    def text_columns(self, columns: Iterable[Any]) -> list[Any]:
        # PyMySQL parses DATETIME in Python; CAST AS CHAR + fromisoformat is ~5x cheaper.
        return as_text(columns, lambda c: cast(c, String))

    def fault(self, exc: DBAPIError) -> Fault:
        """By the server's (or PyMySQL's) error number: out of range (1264), too long (1406),
        DOUBLE overflow (1690), ... are refused data; gone away, lock waits, disk full are not."""
        args = getattr(exc.orig, "args", ())
        code = args[0] if args and isinstance(args[0], int) else None
        if code in _DUPLICATE:
            return Fault.DUPLICATE if names_readings_key(exc) else Fault.DATA
        if code in _CONFLICT:
            return Fault.CONFLICT
        if code in _DATA:
            return Fault.DATA
        if code in _UNAVAILABLE or exc.connection_invalidated or not code:
            return Fault.UNAVAILABLE  # PyMySQL says (0, '') when the socket is gone
        return Fault.OTHER


DIALECT = MySQLDialect()
