"""One contract, every dialect: SQLite, MariaDB and PostgreSQL store and answer the same.

A scenario of batches (redelivered, out of order, a key twice in one batch, across a minute and
a day boundary, a device id that needs escaping) and dead letters is written through each
dialect's own write path; every answer is checked against what a plain Python model of the
scenario says it must be.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from weatherpipe.reading import Reading
from weatherpipe.storage.engine import upgrade
from weatherpipe.storage.repository import BatchResult, DeadLetter, Detection, Repository, Scored
from weatherpipe.testing import DEVICE_A, DEVICE_B

START = datetime(2026, 11, 27, 23, 58, 30, 250000, tzinfo=UTC)  # 90 s before midnight
ODD = "it's\\odd\tid"  # quotes, a backslash and a tab: escaped by every write path
DEVICES = (DEVICE_A, DEVICE_B, ODD)


def temperature(device: int, second: int) -> float:
    return round(-5.0 + (second * 37 + device * 11) % 53 * 0.37, 2)


def reading(device: int, second: int, temp: float | None = None) -> Reading:
    t = temperature(device, second) if temp is None else temp
    return Reading(
        DEVICES[device],
        START + timedelta(seconds=second),
        t,
        48.5 + device + second / 1000,
        -2.25 - second / 1000,
        second,
    )


# A fleet of three devices for 150 s (A, B) and 4 s (ODD): what must end up stored.
FLEET = [reading(d, s) for s in range(150) for d in (0, 1)] + [reading(2, s) for s in range(4)]


@pytest.fixture(params=["sqlite", "mariadb", "postgresql"])
def filled(request: pytest.FixtureRequest) -> Iterator[tuple[Repository, list[BatchResult]]]:
    """A repository on each dialect with the scenario written, and each write's result."""
    repo = Repository.from_url(str(request.getfixturevalue(f"{request.param}_url")))
    upgrade(repo.engine)
    results = [repo.store_batch(FLEET[first : first + 40]) for first in range(0, 240, 40)]
    # The rest arrives out of order, with 30 redelivered readings and one key twice.
    rest = FLEET[240:][::-1] + FLEET[200:230]
    rest.append(reading(0, 149, temp=99.0))  # a second reading of a stored key: dropped
    results.append(repo.store_batch(rest))
    results.append(repo.store_batch([reading(1, 500), reading(1, 500, temp=77.5)]))
    dead = [
        DeadLetter(b"\x00\xff{not json", "not JSON", {"source": "test"}),
        DeadLetter(b"x", "r" * 600),
    ]
    results.append(repo.store_batch([], dead))
    repo.name_devices({DEVICE_A: "Roof", ODD: "Cellar"})
    yield repo, results
    repo.close()


def stored() -> list[Reading]:
    """The model: every key once, its first reading."""
    return [*FLEET, reading(1, 500)]


def of(device: str) -> list[Reading]:
    return sorted((r for r in stored() if r.device_id == device), key=lambda r: r.ts)


def test_each_write_reports_its_new_and_duplicate_readings(
    filled: tuple[Repository, list[BatchResult]],
) -> None:
    _, results = filled
    assert results == [
        *(BatchResult(len(FLEET[first : first + 40]), 0, 0) for first in range(0, 240, 40)),
        BatchResult(len(FLEET) - 240, 31, 0),
        BatchResult(1, 1, 0),
        BatchResult(0, 0, 2),
    ]


def test_readings_are_stored_once_with_their_first_values(
    filled: tuple[Repository, list[BatchResult]],
) -> None:
    repo, _ = filled
    for device in DEVICES:
        page = repo.readings_page(device, limit=1000)
        got = [(r["ts"], r["temperature"], r["latitude"], r["longitude"], r["seq"]) for r in page]
        assert got == [(r.ts, r.temperature, r.latitude, r.longitude, r.seq) for r in of(device)]
    later = repo.readings_page(DEVICE_A, after=START + timedelta(seconds=100), limit=3)
    assert [r["seq"] for r in later] == [101, 102, 103]


def cells(readings: list[Reading], bucket: Any) -> list[tuple[Any, int, float, float, float]]:
    groups: dict[Any, list[float]] = {}
    for r in readings:
        groups.setdefault(bucket(r.ts), []).append(r.temperature)
    return [(k, len(v), min(v), max(v), sum(v) / len(v)) for k, v in sorted(groups.items())]


@pytest.mark.parametrize(
    ("resolution", "bucket"),
    [
        ("raw", lambda ts: ts),
        ("minute", lambda ts: ts.replace(second=0, microsecond=0)),
        ("hour", lambda ts: ts.replace(minute=0, second=0, microsecond=0)),
        ("day", lambda ts: ts.replace(hour=0, minute=0, second=0, microsecond=0)),
    ],
)
def test_series_at_every_resolution_equal_the_readings(
    filled: tuple[Repository, list[BatchResult]], resolution: str, bucket: Any
) -> None:
    repo, _ = filled
    end = START + timedelta(days=1)
    for device in DEVICES:
        points, marks = repo.chart(device, START - timedelta(days=1), end, resolution)
        got = [(p["ts"], p["n"], p["t_min"], p["t_max"], p["t_mean"]) for p in points]
        expected = cells(of(device), bucket)
        assert [g[:4] for g in got] == [e[:4] for e in expected]
        assert [g[4] for g in got] == pytest.approx([e[4] for e in expected], rel=1e-12)
        assert marks == []


def test_devices_carry_their_span_place_count_and_maximum(
    filled: tuple[Repository, list[BatchResult]],
) -> None:
    repo, _ = filled
    names = {DEVICE_A: "Roof", DEVICE_B: None, ODD: "Cellar"}
    expected = []
    for device in sorted(DEVICES):
        rows = of(device)
        last = rows[-1]
        expected.append(
            {
                "device_id": device,
                "name": names[device],
                "latitude": last.latitude,
                "longitude": last.longitude,
                "first_seen": rows[0].ts,
                "last_seen": last.ts,
                "count": len(rows),
                "max_temperature": max(r.temperature for r in rows),
                "last_temperature": last.temperature,
                "last_ts": last.ts,
                "detection": "not_started",
                "false_alarms_per_day": None,
                "description": None,
                "tags": [],
                "enabled": True,
            }
        )
    assert repo.devices() == expected
    assert sorted(repo.device_ids()) == sorted(DEVICES)
    assert repo.devices_last_seen() == {d: of(d)[-1].ts for d in DEVICES}


def test_the_four_analyses_answer_alike(filled: tuple[Repository, list[BatchResult]]) -> None:
    repo, _ = filled
    ordered = sorted(DEVICES)
    counts = [{"device_id": d, "count": len(of(d))} for d in ordered]
    assert repo.analysis("devicedata") == counts
    maxima = [
        {"device_id": d, "max_temperature": max(r.temperature for r in of(d))} for d in ordered
    ]
    assert repo.analysis("devicemax") == maxima
    for day in (START, START + timedelta(days=1)):
        on_day = {
            d: max(r.temperature for r in of(d) if r.ts.date() == day.date())
            for d in ordered
            if any(r.ts.date() == day.date() for r in of(d))
        }
        expected = [{"device_id": d, "max_temperature": t} for d, t in on_day.items()]
        for year in (None, day.year):
            assert repo.analysis("daymax", day=day.day, month=day.month, year=year) == expected
        assert repo.analysis("daymax", day=day.day, month=day.month, year=1999) == []
    since = START - timedelta(hours=1)
    zero = [{"device_id": d, "count": 0} for d in ordered]
    assert repo.analysis("deviceanomalies", since=since) == zero


def test_detection_reads_settled_readings_and_saves_flags_with_state(
    filled: tuple[Repository, list[BatchResult]],
) -> None:
    repo, _ = filled
    cursor = START + timedelta(seconds=9)
    fetched = repo.readings_after_many({DEVICE_A: None, DEVICE_B: cursor}, 10)
    assert [ts for _, ts, _, _ in fetched[DEVICE_A]] == [r.ts for r in of(DEVICE_A)[:10]]
    assert [t for _, _, t, _ in fetched[DEVICE_B]] == [r.temperature for r in of(DEVICE_B)[10:20]]
    flags = [
        Scored(rid, 0.25 + i, i % 4 == 1, "spike" if i % 4 == 1 else "", "high" if i == 5 else "")
        for i, (rid, *_) in enumerate(fetched[DEVICE_A])
    ]
    state = '{"version": 1, "text": "it\'s \\ ünïcode"}' * 50
    repo.save_detection("robust", DEVICE_A, fetched[DEVICE_A][-1][1], state, flags)
    repo.save_detection("robust", DEVICE_B, cursor, "{}", [])
    later = Detection(DEVICE_B, cursor + timedelta(seconds=5), "{2}", [], True, 0.5)
    repo.save_detections("robust", [later])
    assert repo.detector_states("robust") == {
        DEVICE_A: (of(DEVICE_A)[9].ts, state, None),
        DEVICE_B: (cursor + timedelta(seconds=5), "{2}", 0.5),
    }
    flagged_ts = [of(DEVICE_A)[i].ts for i in range(10) if i % 4 == 1]
    assert sorted(repo.flagged("robust")) == [(DEVICE_A, ts) for ts in flagged_ts]
    anomalous = repo.anomalous_readings(START - timedelta(hours=1))
    assert [(r["ts"], r["anomaly_score"], r["detector"]) for r in anomalous] == [
        (of(DEVICE_A)[i].ts, 0.25 + i, "robust") for i in (9, 5, 1)
    ]
    page = repo.readings_page(DEVICE_A, limit=10)
    assert [bool(r["is_anomaly"]) for r in page] == [i % 4 == 1 for i in range(10)]
    assert [(r["kind"], r["severity"]) for r in page if r["is_anomaly"]] == [
        ("spike", None),
        ("spike", "high"),
        ("spike", None),
    ]
    counts = {r["device_id"]: r["count"] for r in repo.analysis("deviceanomalies", since=START)}
    assert counts == {DEVICE_A: 3, DEVICE_B: 0, ODD: 0}
    _, marks = repo.chart(DEVICE_A, START, START + timedelta(minutes=5), "minute")
    assert [m["ts"] for m in marks] == flagged_ts
    assert repo.totals() == {"stored": len(stored()), "dead_letters": 2, "anomalies": 3}


def test_dead_letters_keep_their_bytes_reason_and_attributes(
    filled: tuple[Repository, list[BatchResult]],
) -> None:
    repo, _ = filled
    letters = repo.dead_letters()
    assert [(d["data"], d["reason"], d["attributes"]) for d in letters] == [
        (b"\x00\xff{not json", "not JSON", {"source": "test"}),
        (b"x", "r" * 500, {}),
    ]
    assert repo.pending_dead_letters() == 2
    repo.mark_replayed([letters[0]["id"]])
    assert repo.pending_dead_letters() == 1
    assert [d["id"] for d in repo.dead_letters(pending_only=False)] == [d["id"] for d in letters]
    assert [d["reason"] for d in repo.dead_letters(after_id=letters[0]["id"])] == ["r" * 500]


def test_concurrent_writers_of_overlapping_batches_store_and_count_each_reading_once(
    filled: tuple[Repository, list[BatchResult]],
) -> None:
    repo, _ = filled
    fresh = [reading(d, s) for s in range(1000, 1600) for d in (0, 1)]
    splits = [fresh, fresh[::-1], fresh[300:] + fresh[:300], fresh[::2] + fresh[1::2]]
    results: list[BatchResult] = []

    def write(batch: list[Reading]) -> None:
        for first in range(0, len(batch), 400):
            results.append(repo.store_batch(batch[first : first + 400]))

    threads = [threading.Thread(target=write, args=(split,)) for split in splits]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sum(r.stored for r in results) == len(fresh)
    assert sum(r.duplicates for r in results) == 3 * len(fresh)
    assert repo.totals()["stored"] == len(stored()) + len(fresh)
    counts = {r["device_id"]: r["count"] for r in repo.analysis("devicedata")}
    assert counts == {d: len(of(d)) + (600 if d != ODD else 0) for d in DEVICES}
