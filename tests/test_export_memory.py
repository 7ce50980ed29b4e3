"""An export holds one chunk at a time: the memory it takes stays far below the size of what it
writes (the 2.6-million-reading month is measured by `weatherpipe bench export-memory`)."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from datetime import timedelta

import pyarrow as pa
import pytest

from weatherpipe import export
from weatherpipe.storage.repository import Repository
from weatherpipe.testing import BASE_TIME, DEVICE_A, make_reading

READINGS = 120_000
CHUNK = 2_000


@pytest.fixture
def filled(sqlite_repo: Repository, monkeypatch: pytest.MonkeyPatch) -> Repository:
    monkeypatch.setattr("weatherpipe.storage.export.CHUNK_ROWS", CHUNK)
    monkeypatch.setattr(export, "ROW_GROUP_ROWS", 10_000)
    for first in range(0, READINGS, 20_000):
        batch = [
            make_reading(DEVICE_A, s, 15.0 + (s % 600) / 100, seq=s)
            for s in range(first, first + 20_000)
        ]
        sqlite_repo.store_batch(batch)
    return sqlite_repo


def drain(pieces: Iterator[bytes], probe: list[int]) -> int:
    """Consume the export as a client would (throwing each piece away); its size."""
    size = 0
    for piece in pieces:
        size += len(piece)
        probe.append(_arrow_bytes())
    return size


def _arrow_bytes() -> int:
    return int(pa.total_allocated_bytes())


def measure(repo: Repository, format_: str, seconds: int) -> tuple[int, int, int]:
    """Bytes written, peak Python allocation and peak Arrow allocation of exporting the first
    `seconds` of the series."""
    chunks = repo.export_chunks(DEVICE_A, BASE_TIME, BASE_TIME + timedelta(seconds=seconds))
    arrow: list[int] = [0]
    tracemalloc.start()
    try:
        size = drain(export.encode(chunks, format_), arrow)  # type: ignore[arg-type]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return size, peak, max(arrow)


@pytest.mark.parametrize("format_", ["csv", "parquet"])
def test_export_memory_does_not_grow_with_the_range(filled: Repository, format_: str) -> None:
    # A first small export: imports, compiled statements and pools in place before measuring.
    measure(filled, format_, 10)
    small_size, small_peak, small_arrow = measure(filled, format_, READINGS // 6)
    size, peak, arrow = measure(filled, format_, READINGS)
    assert size > 5 * small_size
    # Six times the rows, about the same memory: one chunk (and one row group) at a time.
    assert peak < 1.5 * small_peak + 256 * 1024, f"{peak:,} vs {small_peak:,} bytes"
    assert arrow <= 1.5 * small_arrow + 256 * 1024, f"{arrow:,} vs {small_arrow:,} bytes"
    if format_ == "csv":  # and far below what it wrote
        assert peak < size / 3, f"peak {peak:,} bytes for {size:,} bytes written"
