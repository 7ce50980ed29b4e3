"""PostgreSQL through psycopg 3: a batch is COPYed into a session-private staging table, then
one statement inserts the new readings and adds exactly those into the rollups and devices.

`INSERT ... ON CONFLICT DO NOTHING RETURNING` names the readings that were new; the rollup
and device upserts read that result in the same statement (data-modifying CTEs), so a
redelivered or concurrently written reading is neither stored nor counted twice, and no
batch is ever written a second time. Rows go in key order: the (device_id, ts) index fills
faster, and concurrent writers lock rollup rows in the same order.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import create_engine, event, func
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import DBAPIError, OperationalError

from weatherpipe.errors import ConfigError
from weatherpipe.storage.dialects.base import STATE_REPLACED, Dialect, number, stamped
from weatherpipe.storage.faults import Fault, sqlstate_fault
from weatherpipe.storage.tables import dead_letters, detector_state

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine
    from sqlalchemy.engine import URL
    from sqlalchemy.sql.elements import ColumnElement

    from weatherpipe.reading import Reading
    from weatherpipe.storage.rows import Scored

# Strings made only of these characters need no escaping in COPY's text format.
_PLAIN = re.compile(r"[0-9A-Za-z_.:\- ]*")
_NULL = "\\N"
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})

# One per session, emptied at each commit; `n` is a reading's place in its batch, so the
# first of two readings of one key is the one stored. The id is text: its length is checked
# by readings' own column, whatever width a migration gives it.
_STAGING = (
    "CREATE TEMPORARY TABLE IF NOT EXISTS wp_staging (device_id text, ts timestamp, "
    "temperature float8, latitude float8, longitude float8, seq bigint, n int) "
    "ON COMMIT DELETE ROWS"
)
_COPY = "COPY wp_staging FROM STDIN"
_ROLLUP_UPDATE = (
    "DO UPDATE SET n = r.n + excluded.n, t_sum = r.t_sum + excluded.t_sum, "
    "t_min = LEAST(r.t_min, excluded.t_min), t_max = GREATEST(r.t_max, excluded.t_max)"
)
_MERGE = f"""
WITH fresh AS (
  INSERT INTO readings (device_id, ts, temperature, latitude, longitude, seq, received_at)
  SELECT device_id, ts, temperature, latitude, longitude, seq, %(received)s FROM wp_staging
  ORDER BY device_id, ts, n
  ON CONFLICT (device_id, ts) DO NOTHING
  RETURNING device_id, ts, temperature, latitude, longitude
), cells AS (
  SELECT device_id, date_trunc('minute', ts) AS minute, count(*) AS n,
         min(temperature) AS t_min, max(temperature) AS t_max, sum(temperature) AS t_sum
  FROM fresh GROUP BY 1, 2
), minutes AS (
  INSERT INTO readings_minute AS r (device_id, minute, n, t_min, t_max, t_sum)
  SELECT device_id, minute, n, t_min, t_max, t_sum FROM cells ORDER BY 1, 2
  ON CONFLICT (device_id, minute) {_ROLLUP_UPDATE}
), days AS (
  -- Days folded from the minute cells: a batch has far fewer of those than readings.
  INSERT INTO readings_daily AS r (device_id, day, year, month, dom, n, t_min, t_max, t_sum)
  SELECT device_id, day, extract(year FROM day), extract(month FROM day), extract(day FROM day),
         sum(n), min(t_min), max(t_max), sum(t_sum)
  FROM (SELECT *, minute::date AS day FROM cells) c
  GROUP BY device_id, day ORDER BY 1, 2
  ON CONFLICT (device_id, day) {_ROLLUP_UPDATE}
), spans AS (
  INSERT INTO devices AS d (id, name, latitude, longitude, first_seen, last_seen)
  SELECT device_id, NULL, last[2], last[3], first_seen, last_seen
  FROM (
    -- The place at the latest reading, by one hash aggregate: arrays compare element by
    -- element, so the largest [epoch, latitude, longitude] is the latest reading's.
    SELECT device_id, min(ts) AS first_seen, max(ts) AS last_seen,
           max(ARRAY[extract(epoch FROM ts)::float8, latitude, longitude]) AS last
    FROM fresh GROUP BY device_id
  ) f
  ORDER BY device_id
  ON CONFLICT (id) DO UPDATE SET first_seen = LEAST(d.first_seen, excluded.first_seen),
    last_seen = GREATEST(d.last_seen, excluded.last_seen),
    latitude = excluded.latitude, longitude = excluded.longitude
)
SELECT count(*) FROM fresh
"""
_SCORES = (
    "UPDATE readings SET is_anomaly = v.flag, anomaly_score = v.score, detector = %(detector)s, "
    "kind = v.kind, severity = v.severity "
    "FROM unnest(%(ids)s::bigint[], %(flags)s::boolean[], %(scores)s::float8[], "
    "%(kinds)s::varchar[], %(severities)s::varchar[]) "
    "AS v(id, flag, score, kind, severity) WHERE readings.id = v.id"
)


@dataclass(frozen=True, slots=True)
class Copy:
    """A batch as COPY text for the staging table, and when it was received."""

    payload: bytes
    received: datetime
    readings: int


def _stamp(ts: datetime) -> str:
    if ts.tzinfo is not None:
        ts = ts.astimezone(UTC).replace(tzinfo=None)
    return ts.isoformat(" ", "microseconds")


def _text(value: str) -> str:
    return value if _PLAIN.fullmatch(value) else value.translate(_COPY_ESCAPES)


def _create_staging(dbapi_connection: Any, _record: Any) -> None:
    # Created once per session, outside any transaction, so a rolled-back batch cannot take
    # it away; its rows go at every commit (ON COMMIT DELETE ROWS costs nothing elsewhere).
    autocommit = dbapi_connection.autocommit
    dbapi_connection.autocommit = True
    try:
        dbapi_connection.execute(_STAGING)
    finally:
        dbapi_connection.autocommit = autocommit


def _copy(conn: Connection, payload: bytes) -> None:
    """COPY the payload into the staging table, in `conn`'s transaction. SQLAlchemy has no
    COPY, so psycopg's errors are translated here as SQLAlchemy translates its own."""
    import psycopg

    dbapi_connection = conn.connection.dbapi_connection
    cursor = dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        with cursor.copy(_COPY) as copy:
            copy.write(payload)
    except psycopg.Error as exc:
        lost = conn.dialect.is_disconnect(exc, dbapi_connection, cursor)  # type: ignore[arg-type]
        if lost:
            conn.invalidate(exc)
        raise DBAPIError.instance(
            _COPY, None, exc, psycopg.Error, connection_invalidated=lost, dialect=conn.dialect
        ) from exc


class PostgreSQLDialect(Dialect):
    name = "postgresql"

    def create_engine(self, url: URL) -> Engine:
        if "+" not in url.drivername:  # postgresql:// means psycopg 3 here
            url = url.set(drivername="postgresql+psycopg")
        elif url.get_driver_name() != "psycopg":
            raise ConfigError("PostgreSQL is used through psycopg 3: postgresql+psycopg://...")
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise ConfigError(
                "PostgreSQL needs psycopg 3: pip install 'weatherpipe[postgres]'"
            ) from None
        engine = create_engine(url, pool_pre_ping=True, pool_recycle=3600, pool_size=5)
        event.listen(engine, "connect", _create_staging)
        return engine

    def render(self, batch: Sequence[Reading], received: datetime) -> Copy:
        texts = stamped(batch, _stamp)
        ids = {device: _text(device) for device in {r.device_id for r in batch}}
        lines = [
            f"{ids[r.device_id]}\t{ts}\t{number(r.temperature)}\t{number(r.latitude)}\t"
            f"{number(r.longitude)}\t{_NULL if r.seq is None else int(r.seq)}\t{n}\n"
            for n, (r, ts) in enumerate(zip(batch, texts, strict=True))
        ]
        return Copy("".join(lines).encode(), received, len(lines))

    def write(self, conn: Connection, rendered: Copy) -> int:
        if not rendered.readings:
            return 0
        _copy(conn, rendered.payload)
        fresh = conn.exec_driver_sql(_MERGE, {"received": rendered.received}).scalar()
        return int(fresh or 0)

    def write_scores(self, conn: Connection, detector: str, results: Sequence[Scored]) -> None:
        """Every score in one UPDATE joined to arrays (one round trip); a flag's kind and
        severity go with it ("": NULL)."""
        conn.exec_driver_sql(
            _SCORES,
            {
                "detector": detector,
                "ids": [s.reading_id for s in results],
                "flags": [bool(s.is_anomaly) for s in results],
                "scores": [float(s.score) for s in results],
                "kinds": [s.kind or None for s in results],
                "severities": [s.severity or None for s in results],
            },
        )

    def state_upsert(self) -> Any:
        pg = insert(detector_state)
        return pg.on_conflict_do_update(
            index_elements=["device_id", "detector"],
            set_={column: pg.excluded[column] for column in STATE_REPLACED},
        )

    def dead_letter_insert(self) -> Any:
        return insert(dead_letters).on_conflict_do_nothing(index_elements=["message_key"])

    def hour(self, minute: ColumnElement[Any]) -> ColumnElement[Any]:
        return func.to_char(minute, "YYYY-MM-DD HH24:00:00")

    def fault(self, exc: DBAPIError) -> Fault:
        if getattr(exc.orig, "sqlstate", None) is None and isinstance(exc, OperationalError):
            return Fault.UNAVAILABLE  # psycopg: a connection failed or lost, with no SQLSTATE
        return sqlstate_fault(exc)


DIALECT = PostgreSQLDialect()
