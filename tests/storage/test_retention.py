"""Pruning on every database: old raw readings, minute rollups and dead letters go in bounded
batches; recent rows, daily rollups and the analyses they answer stay."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from weatherpipe.retention import Policy, Pruner
from weatherpipe.storage.repository import DeadLetter, Repository
from weatherpipe.storage.tables import dead_letters, readings, readings_daily, readings_minute
from weatherpipe.testing import DEVICE_A, DEVICE_B, series

NOW = datetime.now(UTC).replace(microsecond=0)
OLD = (NOW - timedelta(days=40)).replace(hour=12, minute=0, second=0)
POLICY = Policy(readings_days=30, minute_days=35, dead_letter_days=14, batch_rows=3)


def count(repo: Repository, table: object, device_id: str | None = None) -> int:
    query = select(func.count()).select_from(table)  # type: ignore[arg-type]
    if device_id is not None:
        query = query.where(table.c.device_id == device_id)  # type: ignore[attr-defined]
    with repo.engine.connect() as conn:
        return int(conn.execute(query).scalar() or 0)


def fill(repo: Repository) -> None:
    """A: 10 readings 40 days old (over two minutes) and 4 recent; B: 5 recent only; two
    dead letters 20 days old, one new."""
    old = [*series([float(v) for v in range(50, 60)], DEVICE_A, start=OLD - timedelta(seconds=5))]
    repo.store_batch(old)
    repo.store_batch(series([20.0, 21.0, 22.0, 23.0], DEVICE_A, start=NOW - timedelta(hours=1)))
    repo.store_batch(series([5.0] * 5, DEVICE_B, start=NOW - timedelta(hours=1)))
    stale = [DeadLetter(b"old one", "bad"), DeadLetter(b"old two", "bad")]
    repo.store_batch([], stale, received_at=NOW - timedelta(days=20))
    repo.store_batch([], [DeadLetter(b"new", "bad")], received_at=NOW)


def test_prune_deletes_old_rows_in_batches_and_keeps_the_rest(repo: Repository) -> None:
    fill(repo)
    minutes_before = count(repo, readings_minute, DEVICE_A)
    report = asyncio.run(Pruner(repo, POLICY).prune(now=NOW))
    assert report.deleted == {"readings": 10, "readings_minute": 2, "dead_letters": 2}
    assert report.batches >= 10 // 3 + 2  # bounded batches: at most 3 rows each
    assert count(repo, readings, DEVICE_A) == 4
    assert count(repo, readings, DEVICE_B) == 5
    assert count(repo, readings_minute, DEVICE_A) == minutes_before - 2
    assert count(repo, dead_letters) == 1
    assert count(repo, readings_daily) == 3  # A's old day, A's and B's recent day
    again = asyncio.run(Pruner(repo, POLICY).prune(now=NOW))
    assert again.total == 0


def test_analyses_answer_the_same_after_raw_readings_are_pruned(repo: Repository) -> None:
    fill(repo)
    day = OLD.day, OLD.month
    before = [repo.analysis(n) for n in ("devicedata", "devicemax")]
    daymax_before = repo.analysis("daymax", day=day[0], month=day[1], year=None)
    asyncio.run(Pruner(repo, POLICY).prune(now=NOW))
    assert [repo.analysis(n) for n in ("devicedata", "devicemax")] == before
    assert repo.analysis("daymax", day=day[0], month=day[1], year=None) == daymax_before
    counts = {row["device_id"]: row["count"] for row in before[0]}
    assert counts == {DEVICE_A: 14, DEVICE_B: 5}  # readings ever stored, not rows left
    assert {r["device_id"]: r["max_temperature"] for r in before[1]}[DEVICE_A] == 59.0


def test_dry_run_counts_what_a_prune_deletes_and_deletes_nothing(repo: Repository) -> None:
    fill(repo)
    dry = asyncio.run(Pruner(repo, POLICY).prune(now=NOW, dry_run=True))
    assert count(repo, readings) == 19
    assert count(repo, dead_letters) == 3
    real = asyncio.run(Pruner(repo, POLICY).prune(now=NOW))
    assert dry.deleted == real.deleted
    assert "would delete" in "\n".join(dry.lines())


def test_zero_days_keeps_a_table_forever(sqlite_repo: Repository) -> None:
    fill(sqlite_repo)
    forever = Policy(readings_days=0, minute_days=0, dead_letter_days=14)
    report = asyncio.run(Pruner(sqlite_repo, forever).prune(now=NOW))
    assert report.deleted == {"readings": 0, "readings_minute": 0, "dead_letters": 2}
    assert count(sqlite_repo, readings) == 19
    assert "kept forever" in report.lines()[0]


def test_a_stop_ends_the_pass_between_batches(sqlite_repo: Repository) -> None:
    fill(sqlite_repo)
    stop = asyncio.Event()
    seen: list[int] = []

    def on_batch(_table: str, rows: int) -> None:
        seen.append(rows)
        stop.set()

    pruner = Pruner(sqlite_repo, POLICY, on_batch=on_batch)
    report = asyncio.run(pruner.prune(now=NOW, stop=stop))
    assert seen == [3]
    assert report.total == 3
    assert count(sqlite_repo, readings) == 16


def test_the_schedule_prunes_a_pass_at_once_and_stops_when_told(sqlite_repo: Repository) -> None:
    fill(sqlite_repo)

    async def scenario() -> None:
        stop = asyncio.Event()
        running = asyncio.create_task(Pruner(sqlite_repo, POLICY).run(stop, every=3600))
        deadline = asyncio.get_running_loop().time() + 30
        while count(sqlite_repo, readings) > 9 or count(sqlite_repo, dead_letters) > 1:
            assert asyncio.get_running_loop().time() < deadline, "no pass within 30 s"
            await asyncio.sleep(0.01)
        stop.set()
        await asyncio.wait_for(running, 30)  # the hour's pause ends with the stop

    asyncio.run(scenario())
