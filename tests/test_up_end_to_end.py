"""`weatherpipe up` as a user runs it: simulate, bus, ingest, SQLite, detect, API, clean stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from weatherpipe.compose import make_api, open_repository
from weatherpipe.config import load_settings
from weatherpipe.sensors.profiles import DEFAULT_DEVICES


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def poll(check: object, seconds: float) -> object:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            value = check()  # type: ignore[operator]
            if value:
                return value
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"not true within {seconds}s")


@pytest.mark.slow
def test_up_runs_the_whole_pipeline_and_stops_cleanly(tmp_path: Path) -> None:
    port = free_port()
    db = tmp_path / "weather.db"
    env = {
        **os.environ,
        "WEATHERPIPE_DATABASE_URL": f"sqlite:///{db}",
        "WEATHERPIPE_SPOOL_PATH": str(tmp_path / "spool"),
    }
    env.pop("WEATHERPIPE_BUS_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "weatherpipe", "up", "--port", str(port), "--rate", "10"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    base = f"http://127.0.0.1:{port}"
    try:

        def counted() -> list[dict[str, object]] | None:
            rows = httpx.get(f"{base}/api/v1/stats/counts").json()
            ok = len(rows) == 3 and all(int(r["count"]) >= 30 for r in rows)  # type: ignore[call-overload]
            return rows if ok else None

        first = poll(counted, 60)
        second = poll(
            lambda: all(
                b["count"] > a["count"]
                for a, b in zip(first, httpx.get(f"{base}/api/v1/stats/counts").json(), strict=True)  # type: ignore[call-overload]
            ),
            20,
        )
        assert second
        assert httpx.get(f"{base}/api/v1/anomalies?minutes=30").status_code == 200
        home = httpx.get(f"{base}/").text
        assert all(d.name in home for d in DEFAULT_DEVICES)
        poll(lambda: httpx.get(f"{base}/readyz").status_code == 200, 10)
        # `up` shares one metrics registry between ingest and the API.
        metrics = httpx.get(f"{base}/metrics").text
        stored = [
            line
            for line in metrics.splitlines()
            if line.startswith("weatherpipe_readings_stored_total ")
        ]
        assert stored and float(stored[0].split()[1]) > 0
    finally:
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    assert "readings/s" in stderr

    engine = create_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        stored = dict(
            conn.execute(text("SELECT device_id, COUNT(*) FROM readings GROUP BY 1")).all()
        )
        scored = conn.execute(text("SELECT COUNT(*) FROM readings WHERE anomaly_score IS NOT NULL"))
        scored_count = scored.scalar_one()
    assert set(stored) == {d.device_id for d in DEFAULT_DEVICES}
    assert scored_count == sum(stored.values())  # a clean stop leaves nothing unscored
    settings = load_settings(database_url=f"sqlite:///{db}")
    repo = open_repository(settings)
    try:
        with TestClient(make_api(settings, repo)) as client:
            answer = client.get("/api/v1/stats/counts").json()
            names = {d["device_id"]: d["name"] for d in client.get("/api/v1/devices").json()}
    finally:
        repo.close()
    assert {r["device_id"]: r["count"] for r in answer} == stored
    assert names == {d.device_id: d.name for d in DEFAULT_DEVICES}  # `up` names them
