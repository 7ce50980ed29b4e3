"""Dead letters are stored once per message key on every database: a redelivered batch adds
no second copy, a dead letter without a key is always stored, and the insert stays one
multi-row statement on MySQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pymysql.cursors
import pytest
from sqlalchemy import text

from weatherpipe.errors import StorageRefused
from weatherpipe.storage.engine import downgrade, upgrade
from weatherpipe.storage.repository import DeadLetter, Repository
from weatherpipe.testing import series


def stored(repo: Repository) -> list[tuple[bytes, str | None]]:
    rows = repo.dead_letters(limit=1000, pending_only=False)
    return sorted((bytes(r["data"]), r["message_key"]) for r in rows)


def test_a_redelivered_batch_stores_its_dead_letters_once(repo: Repository) -> None:
    batch = series([20.0, 21.0])
    dead = [
        DeadLetter(b"{", "not JSON", {"h": "v"}, key="a" * 32),
        DeadLetter(b"{", "not JSON", None, key="b" * 32),  # the same bytes, another message
    ]
    first = repo.store_batch(batch, dead)
    again = repo.store_batch(batch, [*dead, DeadLetter(b"new", "bad", key="c" * 32)])
    assert (first.stored, again.stored, again.duplicates) == (2, 0, 2)
    assert stored(repo) == [(b"new", "c" * 32), (b"{", "a" * 32), (b"{", "b" * 32)]


def test_one_key_twice_in_one_batch_is_stored_once(repo: Repository) -> None:
    letter = DeadLetter(b"x", "bad", key="d" * 32)
    repo.store_batch([], [letter, letter, DeadLetter(b"y", "bad", key="e" * 32)])
    assert stored(repo) == [(b"x", "d" * 32), (b"y", "e" * 32)]


def test_dead_letters_without_a_key_are_always_stored(repo: Repository) -> None:
    repo.store_batch([], [DeadLetter(b"x", "bad"), DeadLetter(b"x", "bad")])
    repo.store_batch([], [DeadLetter(b"x", "bad")])
    assert stored(repo) == [(b"x", None)] * 3


def test_a_stored_key_is_all_the_insert_forgives(repo: Repository) -> None:
    """No INSERT IGNORE: a value the database refuses still fails the write (ingest then
    splits and stores the dead letter bare), never stored cut short with a warning."""
    too_long = DeadLetter(b"x", "bad", key="g" * 40)  # the column holds 32
    if repo.engine.dialect.name == "sqlite":  # SQLite keeps text of any length
        repo.store_batch([], [too_long])
        assert stored(repo) == [(b"x", "g" * 40)]
        return
    with pytest.raises(StorageRefused):
        repo.store_batch([], [too_long])
    assert stored(repo) == []


@pytest.fixture
def mariadb_repo(mariadb_url: str) -> Iterator[Repository]:
    repository = Repository.from_url(mariadb_url)
    upgrade(repository.engine)
    yield repository
    repository.close()


def test_mysql_sends_a_batch_of_dead_letters_as_one_statement(
    mariadb_repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PyMySQL makes one multi-row INSERT only of a statement with nothing but placeholders
    inside VALUES; otherwise it sends a round trip per row (DESIGN.md's measured facts)."""
    sent: list[str] = []
    execute = pymysql.cursors.Cursor.execute

    def counting(self: pymysql.cursors.Cursor, query: str | bytes, args: object = None) -> int:
        # A multi-row INSERT arrives as bytes, a row of its own as text.
        sql = query if isinstance(query, str) else bytes(query).decode("utf-8", "replace")
        if "dead_letters" in sql:
            sent.append(sql[:200])
        return execute(self, query, args)

    monkeypatch.setattr(pymysql.cursors.Cursor, "execute", counting)
    dead = [DeadLetter(b"%d" % i, "bad", {"i": str(i)}, key=f"{i:032d}") for i in range(200)]
    mariadb_repo.store_batch([], dead)
    mariadb_repo.store_batch([], dead)  # the redelivery: skipped by the key, still one statement
    assert len(sent) == 2, sent[:3]
    assert len(stored(mariadb_repo)) == 200


def test_the_migration_keeps_dead_letters_stored_twice_before_it(database_url: str) -> None:
    """Rows from before the key keep NULL (the copies a redelivery stored cannot be told
    apart now); new rows get keys; and the migration goes down again."""
    repo = Repository.from_url(database_url)
    try:
        upgrade(repo.engine, "0004")
        received = datetime(2026, 12, 1, tzinfo=UTC).replace(tzinfo=None)
        with repo.engine.begin() as conn:
            for _ in range(2):
                conn.execute(
                    text(
                        "INSERT INTO dead_letters (data, reason, received_at) "
                        "VALUES (:data, 'bad', :received)"
                    ),
                    {"data": b"old", "received": received},
                )
        upgrade(repo.engine)
        repo.store_batch([], [DeadLetter(b"new", "bad", key="a" * 32)] * 2)
        assert stored(repo) == [(b"new", "a" * 32), (b"old", None), (b"old", None)]
        downgrade(repo.engine, "0004")
        with repo.engine.connect() as conn:
            assert conn.execute(text("SELECT COUNT(*) FROM dead_letters")).scalar() == 3
    finally:
        repo.close()
