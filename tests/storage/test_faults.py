"""Each dialect's errors, raised by the real database, mean what ingest needs to know: retry at
once, wait it out, split the batch around refused data, or stop."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Connection, create_engine, text
from sqlalchemy.exc import DBAPIError
from tests.conftest import require

from weatherpipe.errors import StorageRefused
from weatherpipe.reading import Reading
from weatherpipe.storage.dialects import load
from weatherpipe.storage.engine import upgrade
from weatherpipe.storage.faults import Fault, message
from weatherpipe.storage.repository import Repository

ROW = (
    "INSERT INTO readings (device_id, ts, temperature, latitude, longitude, seq, received_at) "
    "VALUES (:d, :ts, :t, 0, 0, :seq, :ts)"
)
WHEN = datetime(2026, 11, 28, 1, 2, 3)


def classify(dialect: str, exc: DBAPIError) -> Fault:
    return load(dialect).fault(exc)


def raised(repo: Repository, work: Callable[[Connection], object]) -> DBAPIError:
    with pytest.raises(DBAPIError) as caught, repo.engine.begin() as conn:
        work(conn)
    return caught.value


def insert(**values: object) -> Callable[[Connection], object]:
    row = {"d": "6b4fa32e-a7f5-4ec2-8820-6581468ef36b", "ts": WHEN, "t": 1.0, "seq": 1, **values}
    return lambda conn: conn.execute(text(ROW), row)


def twice(conn: Connection) -> None:
    insert()(conn)
    insert()(conn)


def test_what_refused_data_and_a_redelivery_mean(repo: Repository) -> None:
    duplicate = raised(repo, twice)
    assert classify(repo.dialect, duplicate) is Fault.DUPLICATE
    missing = raised(repo, insert(t=None))
    assert classify(repo.dialect, missing) is Fault.DATA
    assert "temperature" in message(missing)
    nowhere = raised(repo, lambda conn: conn.execute(text("SELECT * FROM no_such_table")))
    assert classify(repo.dialect, nowhere) is Fault.OTHER  # not data: splitting cannot help


def test_mariadb_refuses_values_out_of_its_columns(mariadb_url: str) -> None:
    repo = Repository.from_url(mariadb_url)
    upgrade(repo.engine)
    try:
        out_of_range = raised(repo, insert(seq=2**63))
        assert classify(repo.dialect, out_of_range) is Fault.DATA
        assert message(out_of_range) == "Out of range value for column 'seq' at row 1 (1264)"
        too_long = raised(repo, insert(d="x" * 70))
        assert classify(repo.dialect, too_long) is Fault.DATA
        assert "Data too long for column 'device_id'" in message(too_long)
        assert "INSERT" not in message(too_long)  # the database's words, not the statement
        _lock_wait(repo)
    finally:
        repo.close()


def _lock_wait(repo: Repository) -> None:
    with repo.engine.connect() as holder, repo.engine.connect() as waiter:
        insert()(holder)  # holds the row's lock: its transaction stays open
        waiter.execute(text("SET SESSION innodb_lock_wait_timeout = 1"))
        with pytest.raises(DBAPIError) as caught:
            insert(t=2.0)(waiter)
        holder.rollback()
    assert classify(repo.dialect, caught.value) is Fault.CONFLICT


def test_an_unreachable_mariadb_is_unavailable() -> None:
    require("MariaDB", "127.0.0.1", 3306)  # the refused port is ours; the driver is what we test
    engine = create_engine("mysql+pymysql://root@127.0.0.1:1/weather")
    with pytest.raises(DBAPIError) as caught:
        engine.connect()
    assert classify("mysql", caught.value) is Fault.UNAVAILABLE


def test_postgresql_refuses_values_out_of_its_columns_in_the_copy_too(
    postgresql_url: str,
) -> None:
    repo = Repository.from_url(postgresql_url)
    upgrade(repo.engine)
    try:
        out_of_range = raised(repo, insert(seq=2**63))
        assert classify(repo.dialect, out_of_range) is Fault.DATA
        too_long = raised(repo, insert(d="x" * 70))
        assert classify(repo.dialect, too_long) is Fault.DATA
        assert "INSERT" not in message(too_long)
        reading = Reading("x" * 70, WHEN.replace(tzinfo=UTC), 1.0, 0.0, 0.0, 1)
        with pytest.raises(StorageRefused, match="too long"):
            repo.store_batch([reading])  # through COPY, translated like any other statement
        with repo.engine.connect() as holder, repo.engine.connect() as waiter:
            insert()(holder)  # holds the key: its transaction stays open
            waiter.execute(text("SET lock_timeout = '1s'"))
            with pytest.raises(DBAPIError) as caught:
                insert(t=2.0)(waiter)
            holder.rollback()
        assert classify(repo.dialect, caught.value) is Fault.CONFLICT
    finally:
        repo.close()


def test_an_unreachable_postgresql_is_unavailable() -> None:
    require("PostgreSQL", "127.0.0.1", 5432)
    engine = create_engine("postgresql+psycopg://postgres@127.0.0.1:1/weather")
    with pytest.raises(DBAPIError) as caught:
        engine.connect()
    assert classify("postgresql", caught.value) is Fault.UNAVAILABLE


def test_a_locked_or_unopenable_sqlite_file(tmp_path: Path, sqlite_repo: Repository) -> None:
    path = sqlite_repo.engine.url.database
    holder = sqlite3.connect(str(path), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # holds the write lock
    try:
        impatient = create_engine(f"sqlite:///{path}", connect_args={"timeout": 0})
        with pytest.raises(DBAPIError) as caught, impatient.begin() as conn:
            insert()(conn)
        assert classify("sqlite", caught.value) is Fault.CONFLICT
        impatient.dispose()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    nowhere = create_engine(f"sqlite:///{tmp_path}/no/such/dir/weather.db")
    with pytest.raises(DBAPIError) as opened:
        nowhere.connect()
    assert classify("sqlite", opened.value) is Fault.UNAVAILABLE
