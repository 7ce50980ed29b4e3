"""Fuzz: arbitrary bytes and hostile JSON (with hostile headers) through decode, render and a
real database. Every message is stored or dead-lettered, nothing the decoder accepts is refused
by the database, and ingest carries on."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text

from weatherpipe.bus import create_bus, memory
from weatherpipe.errors import DecodeError
from weatherpipe.ingest.refusals import MAX_ATTRIBUTES_BYTES
from weatherpipe.ingest.worker import IngestWorker
from weatherpipe.reading import Reading, decode, format_ts
from weatherpipe.storage.repository import Repository
from weatherpipe.storage.tables import readings

EXAMPLES = 100
DEVICES = ["6b4fa32e-a7f5-4ec2-8820-6581468ef36b", "2f8d9b1a-3c4e-4f60-8a7b-9c0d1e2f3a4b"]
BASE = datetime(2026, 11, 1, tzinfo=UTC)
FAR_AHEAD = format_ts(datetime.now(UTC) + timedelta(days=2))

# Valid stamps crowd into ten minutes, so readings of one device share minutes (rollups).
good_stamps = st.integers(0, 600_000).map(lambda ms: format_ts(BASE + timedelta(milliseconds=ms)))
stamps = st.one_of(
    good_stamps,
    st.integers(0, 600).map(
        lambda s: (BASE + timedelta(seconds=s)).astimezone().isoformat(timespec="seconds")
    ),
    st.sampled_from(
        [
            "0001-01-01T00:00:00+01:00",
            "9999-12-31T23:59:59-01:00",
            "9999-12-31T23:59:59.999Z",
            "1999-12-31T23:59:59Z",
            "2026-W45-1T01:02:03Z",
            "20261101T010203Z",
            "2026-11-01T01:02:60Z",
            "2026-02-29T00:00:00Z",
            "2026-11-01T00:00:00.0000000001Z",
            FAR_AHEAD,
        ]
    ),
    st.text(max_size=40),
)
numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(-300, 300),
    st.integers(-(2**70), 2**70),
    st.sampled_from([1e308, -1e308, 1e16, -0.0, 5e-324, "NaN", "Infinity", "21.5", True, None]),
)
devices = st.one_of(
    st.sampled_from(DEVICES).map(str.upper),
    st.sampled_from(DEVICES).map(lambda d: "{" + d + "}"),
    st.sampled_from(DEVICES).map(lambda d: d.replace("6", "\uff16")),
    st.sampled_from(DEVICES).map(lambda d: d.replace("-", "")),
    st.text(max_size=50),
)
values: st.SearchStrategy[Any] = st.recursive(
    st.one_of(st.none(), st.booleans(), numbers, st.text(max_size=30)),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)
VALID: dict[str, st.SearchStrategy[Any]] = {
    "v": st.just(1),
    "device_id": st.sampled_from(DEVICES),
    "ts": good_stamps,
    "seq": st.one_of(st.integers(0, 2**63 - 1), st.none()),
    "temperature": st.one_of(st.floats(-273.15, 10_000), st.sampled_from([1e4, -273.15])),
    "latitude": st.floats(-90, 90),
    "longitude": st.floats(-180, 180),
}
HOSTILE: dict[str, st.SearchStrategy[Any]] = {
    "v": values,
    "device_id": devices,
    "ts": stamps,
    "seq": st.one_of(st.integers(-(2**65), 2**65), st.sampled_from([2**63, 2**64 - 1]), values),
    "temperature": st.one_of(numbers, st.just(1e308)),  # twice in a minute: an infinite sum
    "latitude": numbers,
    "longitude": numbers,
    "note": st.one_of(values, st.integers(0, 70_000).map(lambda n: "x" * n)),
}


@st.composite
def hostile_json(draw: st.DrawFn) -> bytes:
    """A valid reading with up to three fields made hostile or missing, maybe an extra or a
    repeated key (written as raw text: a repeated key is legal JSON, the last one wins), and
    now and then invalid UTF-8."""
    pairs = [(name, draw(strategy)) for name, strategy in VALID.items()]
    for name in draw(st.lists(st.sampled_from(sorted(HOSTILE)), max_size=3)):
        if draw(st.integers(0, 5)) == 0:
            pairs = [(n, v) for n, v in pairs if n != name]
        else:
            pairs.append((name, draw(HOSTILE[name])))
    if draw(st.booleans()):
        pairs = draw(st.permutations(pairs))
    text = ",".join(json.dumps(n) + ":" + json.dumps(v, allow_nan=True) for n, v in pairs)
    data = ("{" + text + "}").encode("utf-8", "surrogatepass")
    if draw(st.integers(0, 15)) == 0:
        at = draw(st.integers(0, len(data)))
        data = data[:at] + b"\xff\xc0" + data[at:]
    return data


@st.composite
def valid_reading(draw: st.DrawFn) -> bytes:
    return json.dumps({name: draw(strategy) for name, strategy in VALID.items()}).encode()


@st.composite
def poison_pill(draw: st.DrawFn) -> bytes:
    """A valid reading but for one value of the issue's poison pills: each minute of each
    device gets a few, so two 1e308 share a rollup cell."""
    body = {name: draw(strategy) for name, strategy in VALID.items()}
    body["ts"] = format_ts(BASE + timedelta(milliseconds=draw(st.integers(0, 119_999))))
    name, value = draw(
        st.sampled_from(
            [
                ("temperature", 1e308),
                ("temperature", 10_000.000001),
                ("seq", 2**63),
                ("ts", "0001-01-01T00:00:00+01:00"),
                ("ts", "9999-12-31T23:59:59-01:00"),
                ("latitude", 90.000001),
            ]
        )
    )
    body[name] = value
    return json.dumps(body).encode()


headers = st.one_of(
    st.none(),
    st.dictionaries(st.text(min_size=1, max_size=20), st.text(max_size=50), max_size=4),
    st.integers(1, 40_000).map(lambda n: {"x-pill": "\u00e9\u2603" * n}),
)
messages = st.lists(
    st.tuples(
        st.one_of(st.binary(max_size=200), hostile_json(), valid_reading(), poison_pill()),
        headers,
    ),
    min_size=1,
    max_size=12,
)


def expected(data: bytes) -> Reading | None:
    try:
        return decode(data)
    except DecodeError:
        return None


def ingest(repo: Repository, batch: list[tuple[bytes, dict[str, str] | None]]) -> IngestWorker:
    """Publish `batch` and run a worker until every message is settled (60 s deadline)."""

    async def scenario() -> IngestWorker:
        async with create_bus("memory://fuzz") as bus:
            for data, attributes in batch:
                await bus.publish(data, attributes)
            worker = IngestWorker(bus, repo, batch_seconds=0.01, writers=2)
            stop = asyncio.Event()
            task = asyncio.create_task(worker.run(stop))
            deadline = time.monotonic() + 60
            while worker.stats.received < len(batch):
                assert not task.done(), task.exception()
                assert time.monotonic() < deadline, "ingest did not settle the batch in 60 s"
                await asyncio.sleep(0.005)
            stop.set()
            await task
            assert len(bus._queue().in_flight) == 0  # type: ignore[attr-defined]
            return worker

    return asyncio.run(scenario())


def last_dead_id(repo: Repository) -> int:
    with repo.engine.connect() as conn:
        return int(conn.execute(text("SELECT COALESCE(MAX(id), 0) FROM dead_letters")).scalar_one())


def stored(repo: Repository, reading: Reading) -> bool:
    query = select(readings.c.id).where(
        readings.c.device_id == reading.device_id,
        readings.c.ts == reading.ts.replace(tzinfo=None),
    )
    with repo.engine.connect() as conn:
        return len(conn.execute(query).all()) == 1


def test_every_hostile_message_is_stored_or_dead_lettered(repo: Repository) -> None:
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(messages)
    def check(batch: list[tuple[bytes, dict[str, str] | None]]) -> None:
        memory.reset()
        before = last_dead_id(repo)
        worker = ingest(repo, batch)
        wanted = [(data, expected(data)) for data, _ in batch]
        refused = Counter(data for data, reading in wanted if reading is None)
        letters = repo.dead_letters(limit=10_000, after_id=before)
        assert Counter(row["data"] for row in letters) == refused
        for row in letters:
            assert row["reason"] and not row["reason"].startswith("refused by the database")
            assert len(orjson.dumps(row["attributes"])) <= MAX_ATTRIBUTES_BYTES
        for _, reading in wanted:
            assert reading is None or stored(repo, reading)
        s = worker.stats
        assert s.stored + s.duplicates + s.dead == s.received == len(batch)

    check()
