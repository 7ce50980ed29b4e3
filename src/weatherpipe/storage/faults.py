"""What a database error means for the write that raised it: one function per dialect.

Ingest acts on the answer: a duplicate key is rewritten without the stored keys, a lock
conflict is retried at once, an unavailable database is waited out, refused data is split until
the refused messages are found (they become dead letters), and anything else stops the worker.
An unknown error is never taken for refused data: splitting a batch because of, say, a missing
table would dead-letter every message in it.
"""

from __future__ import annotations

import enum
from collections.abc import Callable

from sqlalchemy.exc import DBAPIError

# The key that makes a reading exactly-once; a collision on it is a redelivery, not an error.
READINGS_KEY = ("uq_readings_device_ts", "readings.device_id, readings.ts")
REASON_CHARS = 200


class Fault(enum.Enum):
    DUPLICATE = "duplicate"  # a reading's (device_id, ts) is stored already
    CONFLICT = "conflict"  # deadlock, lock wait, busy: the same transaction again, now
    UNAVAILABLE = "unavailable"  # connection, server, disk, rights: the same write, later
    DATA = "data"  # the rows themselves are refused: no retry can store them
    OTHER = "other"  # neither (a bug, a missing migration): stop and say so


# MySQL / MariaDB error numbers (server 1xxx-4xxx, client 2xxx).
_MYSQL_CONFLICT = frozenset({1205, 1213})
_MYSQL_UNAVAILABLE = frozenset(
    {
        1021, 1030, 1037, 1038, 1040, 1041, 1044, 1045, 1053, 1081, 1114, 1129, 1135, 1142,
        1152, 1158, 1159, 1160, 1161, 1184, 1203, 1226, 1290, 1317, 1792, 1836, 1927, 1969,
        2002, 2003, 2005, 2006, 2011, 2013, 2014, 2026, 2055, 3024, 4031,
    }
)  # fmt: skip
_MYSQL_DATA = frozenset(
    {
        1048, 1101, 1118, 1153, 1264, 1265, 1292, 1300, 1365, 1366, 1367, 1406, 1411, 1416,
        1441, 1451, 1452, 1644, 1690, 3140, 3819, 4025,
    }
)  # fmt: skip
_MYSQL_DUPLICATE = frozenset({1062, 1586})

# SQLite primary result codes (the low byte of an extended code).
_SQLITE_CONFLICT = frozenset({5, 6})  # BUSY, LOCKED
_SQLITE_UNAVAILABLE = frozenset({7, 8, 9, 10, 13, 14, 15})  # NOMEM READONLY INTERRUPT IOERR FULL
_SQLITE_DATA = frozenset({18, 19, 20})  # TOOBIG, CONSTRAINT, MISMATCH
_SQLITE_CONSTRAINT_UNIQUE = frozenset({1555, 2067})  # PRIMARYKEY, UNIQUE


def mysql_fault(exc: DBAPIError) -> Fault:
    """MySQL and MariaDB, by the server's (or PyMySQL's) error number."""
    args = getattr(exc.orig, "args", ())
    code = args[0] if args and isinstance(args[0], int) else None
    if code in _MYSQL_DUPLICATE:
        return Fault.DUPLICATE if _names_readings_key(exc) else Fault.DATA
    if code in _MYSQL_CONFLICT:
        return Fault.CONFLICT
    if code in _MYSQL_DATA:
        return Fault.DATA
    if code in _MYSQL_UNAVAILABLE or exc.connection_invalidated or not code:
        return Fault.UNAVAILABLE  # PyMySQL says (0, '') when the socket is gone
    return Fault.OTHER


def sqlite_fault(exc: DBAPIError) -> Fault:
    """SQLite, by sqlite3's result code (Python 3.11 and later carry it)."""
    code = getattr(exc.orig, "sqlite_errorcode", None)
    if code is None:
        return Fault.UNAVAILABLE if exc.connection_invalidated else Fault.OTHER
    if code in _SQLITE_CONSTRAINT_UNIQUE and _names_readings_key(exc):
        return Fault.DUPLICATE
    primary = code & 0xFF
    if primary in _SQLITE_CONFLICT:
        return Fault.CONFLICT
    if primary in _SQLITE_UNAVAILABLE:
        return Fault.UNAVAILABLE
    if primary in _SQLITE_DATA:
        return Fault.DATA
    return Fault.OTHER


def postgresql_fault(exc: DBAPIError) -> Fault:
    """PostgreSQL, by SQLSTATE (psycopg's `sqlstate`, psycopg2's `pgcode`)."""
    state = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    if not state:
        return Fault.UNAVAILABLE if exc.connection_invalidated else Fault.OTHER
    if state == "23505":
        return Fault.DUPLICATE if _names_readings_key(exc) else Fault.DATA
    if state in ("40001", "40P01", "55P03"):
        return Fault.CONFLICT
    if state[:2] in ("22", "23") or state == "54000":
        return Fault.DATA  # data exception, integrity violation, program limit (row too big)
    if state[:2] in ("08", "53", "57", "28") or state in ("25006", "58030"):
        return Fault.UNAVAILABLE  # connection, resources, shutdown/cancel, auth, read-only, I/O
    return Fault.OTHER


FAULTS: dict[str, Callable[[DBAPIError], Fault]] = {
    "sqlite": sqlite_fault,
    "mysql": mysql_fault,
    "mariadb": mysql_fault,
    "postgresql": postgresql_fault,
}


def classify(dialect: str, exc: DBAPIError) -> Fault:
    """What `exc`, raised by a `dialect` database ("sqlite", "mysql", ...), means."""
    fault = FAULTS.get(dialect)
    if fault is not None:
        return fault(exc)
    return Fault.UNAVAILABLE if exc.connection_invalidated else Fault.OTHER


def message(exc: BaseException) -> str:
    """The database's own words, short and ASCII: no SQL, no parameters (no data, no secrets)."""
    orig = getattr(exc, "orig", None) or exc
    args: tuple[object, ...] = tuple(getattr(orig, "args", ()))
    if len(args) >= 2 and isinstance(args[0], int):  # PyMySQL: (errno, text)
        text = f"{args[1]} ({args[0]})"
    else:
        text = str(orig).strip() or type(orig).__name__
    line = text.splitlines()[0]
    short = line.encode("ascii", "backslashreplace").decode("ascii")
    return short if len(short) <= REASON_CHARS else short[: REASON_CHARS - 3] + "..."


def _names_readings_key(exc: DBAPIError) -> bool:
    text = str(exc.orig)
    return any(name in text for name in READINGS_KEY)
