"""GET /api/v1/readings/export on every database: CSV and Parquet hold exactly the stored
readings, in (device_id, ts) order across chunks; bad parameters are 422, never a 500."""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from weatherpipe import export
from weatherpipe.compose import make_api
from weatherpipe.config import load_settings
from weatherpipe.storage.repository import Repository, Scored
from weatherpipe.testing import DEVICE_A, DEVICE_B, series

START = datetime(2026, 11, 3, 10, 0, 0, 250_000, tzinfo=UTC)


@pytest.fixture
def client(repo: Repository, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    # Chunks of 7 rows: a device's 25 readings take four queries, paged by key.
    monkeypatch.setattr("weatherpipe.storage.export.CHUNK_ROWS", 7)
    monkeypatch.setattr(export, "ROW_GROUP_ROWS", 10)
    repo.store_batch(series([20.0 + i / 8 for i in range(25)], DEVICE_A, start=START))
    repo.store_batch(series([-3.5, -4.0, 99.125], DEVICE_B, start=START + timedelta(hours=1)))
    assert repo.update_device(DEVICE_A, name="Greenhouse, north")  # a comma for the CSV quoting
    rows = repo.readings_after(DEVICE_A, None, 10)
    flagged = [Scored(rows[3][0], 0.99, True, "spike", "high"), Scored(rows[4][0], 0.1, False)]
    repo.save_detection("vigil", DEVICE_A, rows[-1][1], "{}", flagged)
    settings = load_settings(database_url=str(repo.engine.url))
    with TestClient(make_api(settings, repo)) as test_client:
        yield test_client


def expected(repo: Repository, device_id: str) -> list[dict[str, Any]]:
    """The device's readings as the paged readings endpoint's storage reads them."""
    names = {d["device_id"]: d["name"] for d in repo.devices()}
    assert names[DEVICE_A] == "Greenhouse, north"
    out = []
    for row in repo.readings_page(device_id, limit=10_000):
        out.append(
            {
                "device_id": row["device_id"],
                "name": names[device_id],
                "ts": row["ts"],
                "temperature": row["temperature"],
                "seq": row["seq"],
                "is_anomaly": None if row["is_anomaly"] is None else bool(row["is_anomaly"]),
                "anomaly_score": row["anomaly_score"],
                "kind": row["kind"],
            }
        )
    return out


def from_csv(body: bytes) -> list[dict[str, Any]]:
    rows = list(csv.DictReader(io.StringIO(body.decode())))
    flags = {"true": True, "false": False, "": None}
    return [
        {
            "device_id": r["device_id"],
            "name": r["name"] or None,
            "ts": datetime.fromisoformat(r["ts"]),
            "temperature": float(r["temperature"]),
            "seq": int(r["seq"]),
            "is_anomaly": flags[r["is_anomaly"]],
            "anomaly_score": float(r["anomaly_score"]) if r["anomaly_score"] else None,
            "kind": r["kind"] or None,
        }
        for r in rows
    ]


def from_parquet(body: bytes) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    table = pq.read_table(io.BytesIO(body))
    keep = ("device_id", "name", "ts", "temperature", "seq", "is_anomaly", "anomaly_score", "kind")
    return [{k: row[k] for k in keep} for row in table.to_pylist()]


def test_csv_export_round_trips_every_reading_in_key_order(
    client: TestClient, repo: Repository
) -> None:
    answer = client.get("/api/v1/readings/export", params={"format": "csv"})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    assert answer.text.splitlines()[0] == ",".join(export.COLUMNS)
    both = sorted([DEVICE_A, DEVICE_B])
    assert from_csv(answer.content) == expected(repo, both[0]) + expected(repo, both[1])
    assert "2026-11-03T10:00:00.250Z" in answer.text


def test_parquet_export_round_trips_one_device_in_row_groups(
    client: TestClient, repo: Repository
) -> None:
    import pyarrow.parquet as pq

    answer = client.get(
        "/api/v1/readings/export", params={"format": "parquet", "device_id": DEVICE_A}
    )
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/vnd.apache.parquet"
    assert from_parquet(answer.content) == expected(repo, DEVICE_A)
    assert pq.ParquetFile(io.BytesIO(answer.content)).metadata.num_row_groups >= 2
    flagged = [r for r in from_parquet(answer.content) if r["is_anomaly"]]
    assert [(r["kind"], r["anomaly_score"]) for r in flagged] == [("spike", 0.99)]


def test_a_time_range_is_inclusive_start_exclusive_end(client: TestClient) -> None:
    params = {
        "device_id": DEVICE_A.upper(),
        "start": "2026-11-03T10:00:02.250Z",
        "end": "2026-11-03T11:00:05.250+01:00",
    }
    answer = client.get("/api/v1/readings/export", params=params)
    times = [r["ts"] for r in from_csv(answer.content)]
    assert times[0] == START + timedelta(seconds=2)
    assert times[-1] == START + timedelta(seconds=4)
    assert len(times) == 3


def test_an_empty_range_is_a_header_or_an_empty_parquet_file(client: TestClient) -> None:
    params = {"start": "2030-01-01T00:00:00Z"}
    answer = client.get("/api/v1/readings/export", params=params)
    assert answer.text == ",".join(export.COLUMNS) + "\n"
    parquet = client.get("/api/v1/readings/export", params={**params, "format": "parquet"})
    assert from_parquet(parquet.content) == []


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"format": "xlsx"}, 422),
        ({"device_id": "not a device!"}, 422),
        ({"start": "yesterday"}, 422),
        ({"start": "2026-11-03T10:00:00"}, 422),  # no offset
        ({"start": "2026-11-04T00:00:00Z", "end": "2026-11-03T00:00:00Z"}, 422),
        ({"device_id": "nobody-here"}, 404),
    ],
)
def test_bad_parameters_are_refused_before_anything_streams(
    client: TestClient, params: dict[str, str], status: int
) -> None:
    answer = client.get("/api/v1/readings/export", params=params)
    assert answer.status_code == status
    assert answer.json()["detail"]


def test_parquet_without_pyarrow_says_which_extra_to_install(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    answer = client.get("/api/v1/readings/export", params={"format": "parquet"})
    assert answer.status_code == 501
    assert "weatherpipe[export]" in answer.json()["detail"]
