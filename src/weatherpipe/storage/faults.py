"""What a database error means for the write that raised it. Each dialect answers with its
`Dialect.fault(exc)` (storage/dialects/); this module holds the answers and what they share.

Ingest acts on the answer: a duplicate key is rewritten without the stored keys, a lock
conflict is retried at once, an unavailable database is waited out, refused data is split until
the refused messages are found (they become dead letters), and anything else stops the worker.
An unknown error is never taken for refused data: splitting a batch because of, say, a missing
table would dead-letter every message in it.
"""

from __future__ import annotations

import enum

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


def sqlstate_fault(exc: DBAPIError) -> Fault:
    """By SQLSTATE (psycopg's `sqlstate`, psycopg2's `pgcode`): PostgreSQL and its kin."""
    state = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    if not state:
        return Fault.UNAVAILABLE if exc.connection_invalidated else Fault.OTHER
    if state == "23505":
        return Fault.DUPLICATE if names_readings_key(exc) else Fault.DATA
    if state in ("40001", "40P01", "55P03"):
        return Fault.CONFLICT
    if state[:2] in ("22", "23") or state == "54000":
        return Fault.DATA  # data exception, integrity violation, program limit (row too big)
    if state[:2] in ("08", "53", "57", "28") or state in ("25006", "58030"):
        return Fault.UNAVAILABLE  # connection, resources, shutdown/cancel, auth, read-only, I/O
    return Fault.OTHER


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


def names_readings_key(exc: DBAPIError) -> bool:
    """Whether a unique-key error is about the readings' (device_id, ts) key."""
    text = str(exc.orig)
    return any(name in text for name in READINGS_KEY)
