"""SQLite through the standard library's sqlite3: WAL mode, ingest as multi-row executemany."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from itertools import chain
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    String,
    Table,
    create_engine,
    delete,
    event,
    func,
    literal_column,
    select,
    type_coerce,
)
from sqlalchemy.dialects.sqlite import insert

from weatherpipe.storage.dialects.base import (
    STATE_REPLACED,
    Dialect,
    Statement,
    Statements,
    as_text,
    days_and_spans,
    minute_cells,
    older_than,
    run,
    stamped,
)
from weatherpipe.storage.faults import Fault, names_readings_key
from weatherpipe.storage.tables import dead_letters, detector_state

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine
    from sqlalchemy.engine import URL
    from sqlalchemy.exc import DBAPIError
    from sqlalchemy.sql.elements import ColumnElement

    from weatherpipe.reading import Reading

# SQLite (3.32 and later) takes up to 32,766 parameters per statement: 4,000 rows of 7.
ROWS_PER_STATEMENT = 4000
_KEY = itemgetter(0, 1)  # (device_id, ts) of a reading row
# What SQLite's primary result codes mean; see faults.py.
_CONFLICT = frozenset({5, 6})  # BUSY, LOCKED
_UNAVAILABLE = frozenset({7, 8, 9, 10, 13, 14, 15})  # NOMEM READONLY INTERRUPT IOERR FULL CANTOPEN
_DATA = frozenset({18, 19, 20})  # TOOBIG, CONSTRAINT, MISMATCH
_CONSTRAINT_UNIQUE = frozenset({1555, 2067})  # extended: PRIMARYKEY, UNIQUE

_READINGS = (
    "INSERT INTO readings (device_id, ts, temperature, latitude, longitude, seq, received_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_ROLLUP_UPDATE = (
    " ON CONFLICT ({keys}) DO UPDATE SET n = n + excluded.n, t_sum = t_sum + excluded.t_sum, "
    "t_min = min(t_min, excluded.t_min), t_max = max(t_max, excluded.t_max)"
)
_MINUTE = (
    "INSERT INTO readings_minute (device_id, minute, n, t_min, t_max, t_sum) "
    "VALUES (?, ?, ?, ?, ?, ?)" + _ROLLUP_UPDATE.format(keys="device_id, minute")
)
_DAILY = (
    "INSERT INTO readings_daily (device_id, day, year, month, dom, n, t_min, t_max, t_sum) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)" + _ROLLUP_UPDATE.format(keys="device_id, day")
)
_DEVICES = (
    "INSERT INTO devices (id, name, latitude, longitude, first_seen, last_seen) "
    "VALUES (?, NULL, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
    # COALESCE: a device provisioned ahead has no first/last reading yet (NULL), and SQLite's
    # two-argument min/max of NULL is NULL.
    "first_seen = min(COALESCE(first_seen, excluded.first_seen), excluded.first_seen), "
    "last_seen = max(COALESCE(last_seen, excluded.last_seen), excluded.last_seen), "
    "latitude = excluded.latitude, longitude = excluded.longitude"
)


def _pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the API read while ingest writes; the busy timeout rides out short write locks.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def sqlite_stamp(ts: datetime) -> str:
    """SQLAlchemy's SQLite DATETIME text, 'YYYY-MM-DD HH:MM:SS.ffffff', in UTC."""
    if ts.tzinfo is not None:
        ts = ts.astimezone(UTC).replace(tzinfo=None)
    return ts.isoformat(" ", "microseconds")


def _many_rows(sql: str, rows: list[tuple[Any, ...]]) -> list[Statement]:
    """`sql` (one row of placeholders) as statements of many rows each, where SQLite allows
    that many parameters. sqlite3 lets other threads run while a statement executes, and
    executemany executes once per row: one statement per 4,000 rows lets ingest decode the
    next batch meanwhile (about 15% more throughput)."""
    if sqlite3.sqlite_version_info < (3, 32, 0) or not rows:  # before 3.32: 999 parameters
        return [(sql, rows)]
    head, placeholders = sql.split(" VALUES ")
    statements: list[Statement] = []
    for first in range(0, len(rows), ROWS_PER_STATEMENT):
        chunk = rows[first : first + ROWS_PER_STATEMENT]
        values = ",".join([placeholders] * len(chunk))
        statements.append((f"{head} VALUES {values}", [tuple(chain.from_iterable(chunk))]))
    return statements


class SQLiteDialect(Dialect):
    name = "sqlite"

    def create_engine(self, url: URL) -> Engine:
        engine = create_engine(url, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _pragmas)
        return engine

    def render(self, batch: Sequence[Reading], received: datetime) -> Statements:
        """Readings, rollups and devices as executemany rows (a stored key raises)."""
        received_text = sqlite_stamp(received)
        texts = stamped(batch, sqlite_stamp)
        rows = [
            (r.device_id, ts, r.temperature, r.latitude, r.longitude, r.seq, received_text)
            for r, ts in zip(batch, texts, strict=True)
        ]
        # In key order, SQLite fills its unique index about 20% faster. By the key alone: two
        # copies of a key may differ in seq only, and None and int do not compare.
        rows.sort(key=_KEY)
        minutes = minute_cells(batch, texts)
        days, spans = days_and_spans(minutes)
        statements = [
            *_many_rows(_READINGS, rows),
            (_MINUTE, [(d, f"{m}:00.000000", *c[:4]) for (d, m), c in sorted(minutes.items())]),
            (
                _DAILY,
                [
                    (d, day, int(day[:4]), int(day[5:7]), int(day[8:10]), *c)
                    for (d, day), c in sorted(days.items())
                ],
            ),
            (_DEVICES, [(d, s[2], s[3], s[0], s[1]) for d, s in sorted(spans.items())]),
        ]
        return Statements(statements, len(rows))

    def write(self, conn: Connection, rendered: Statements) -> int:
        run(conn, rendered.statements)
        return rendered.readings

    def state_upsert(self) -> Any:
        lite = insert(detector_state)
        return lite.on_conflict_do_update(
            index_elements=["device_id", "detector"],
            set_={column: lite.excluded[column] for column in STATE_REPLACED},
        )

    def dead_letter_insert(self) -> Any:
        # Not INSERT OR IGNORE: that would also skip a row breaking NOT NULL, silently.
        return insert(dead_letters).on_conflict_do_nothing(index_elements=["message_key"])

    def hour(self, minute: ColumnElement[Any]) -> ColumnElement[Any]:
        # ISO text: its first 13 characters name the hour.
        return func.substr(minute, 1, 13).concat(":00:00")

    def delete_oldest(self, table: Table, column: str, by_device: bool, limit: int) -> Any:
        """By rowid: SQLite's DELETE takes no LIMIT (unless built with it)."""
        rowid: ColumnElement[int] = literal_column("rowid")
        oldest = (
            select(rowid)
            .select_from(table)
            .where(*older_than(table, column, by_device))
            .order_by(table.c[column])
            .limit(limit)
        )
        return delete(table).where(rowid.in_(oldest))

    def text_columns(self, columns: Iterable[Any]) -> list[Any]:
        # SQLite keeps DateTime as ISO text and SQLAlchemy parses it with a regex; at thousands
        # of rows per answer that was most of an endpoint's time. Read the text instead.
        return as_text(columns, lambda c: type_coerce(c, String))

    def fault(self, exc: DBAPIError) -> Fault:
        """By sqlite3's result code (Python 3.11 and later carry it): a constraint other than
        the readings' key, a string or blob too big, a type mismatch are refused data."""
        code = getattr(exc.orig, "sqlite_errorcode", None)
        if code is None:
            return Fault.UNAVAILABLE if exc.connection_invalidated else Fault.OTHER
        if code in _CONSTRAINT_UNIQUE and names_readings_key(exc):
            return Fault.DUPLICATE
        primary = code & 0xFF
        if primary in _CONFLICT:
            return Fault.CONFLICT
        if primary in _UNAVAILABLE:
            return Fault.UNAVAILABLE
        if primary in _DATA:
            return Fault.DATA
        return Fault.OTHER


DIALECT = SQLiteDialect()
