"""One database: its engine, its dialect, and transactions that retry lock conflicts and
translate driver errors into weatherpipe's own. Every store of `storage/` runs through it."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

from weatherpipe.errors import StorageError, StorageRefused, StorageUnavailable
from weatherpipe.storage.dialects import load
from weatherpipe.storage.dialects.base import Dialect
from weatherpipe.storage.engine import create_db_engine
from weatherpipe.storage.faults import Fault, message
from weatherpipe.storage.rows import plain_rows

log = logging.getLogger(__name__)
T = TypeVar("T")
# A deadlock or lock wait between two ingest processes is retried; the transaction is whole.
RETRIES = 5


class Database:
    """An engine and its dialect; `run` is the one way work reaches it."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect: Dialect = load(engine.dialect.name)

    @classmethod
    def from_url(cls, url: str) -> Database:
        return cls(create_db_engine(url))

    def close(self) -> None:
        self.engine.dispose()

    def run(self, work: Callable[[Connection], T]) -> T:
        """Run `work` in one transaction; retry deadlocks; translate driver errors by what the
        dialect says they mean: unavailable, refused data (StorageRefused), or neither."""
        for attempt in range(RETRIES):
            try:
                with self.engine.begin() as conn:
                    return work(conn)
            except DBAPIError as exc:
                fault = self.dialect.fault(exc)
                if fault is Fault.DUPLICATE:
                    raise  # the ingest store writes the batch again without the stored keys
                if fault is Fault.CONFLICT and attempt < RETRIES - 1:
                    time.sleep(0.05 * (attempt + 1))
                    continue
                if fault is Fault.DATA:
                    raise StorageRefused(message(exc)) from exc
                if fault in (Fault.CONFLICT, Fault.UNAVAILABLE):
                    raise StorageUnavailable(f"database unavailable: {_first_line(exc)}") from exc
                raise StorageError(_first_line(exc)) from exc
            except OverflowError as exc:  # sqlite3 binds integers of 64 bits at most
                raise StorageRefused(str(exc)) from exc
        raise AssertionError("unreachable")

    def ping(self) -> None:
        self.run(lambda conn: conn.execute(text("SELECT 1")))

    def rows(self, *queries: Any) -> list[list[dict[str, Any]]]:
        """Each query's rows as plain dicts, all read in one transaction (one pool checkout)."""

        def work(conn: Connection) -> list[tuple[list[str], Sequence[Any]]]:
            results = [conn.execute(query) for query in queries]
            return [(list(map(str, r.keys())), r.all()) for r in results]

        return [plain_rows(keys, rows) for keys, rows in self.run(work)]


class Store:
    """A seam's implementation over one Database (stores of one database share it)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    @property
    def engine(self) -> Engine:
        return self.db.engine

    @property
    def dialect(self) -> str:
        """The database's SQLAlchemy name: "sqlite", "mysql", "mariadb" or "postgresql"."""
        return self.db.engine.dialect.name

    def ping(self) -> None:
        self.db.ping()

    def close(self) -> None:
        self.db.close()


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:300]
