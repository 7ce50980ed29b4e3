"""The issue's test: an anomaly in a running `weatherpipe up` reaches a webhook and a real
Alertmanager within 10 s, once, and its resolve follows when it clears."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.alerts.alertmanager import alertmanager, free_port
from tests.alerts.receiver import Received, http_receiver
from weatherpipe.compose import fleet_names

CLEAR_SECONDS = 15  # the rule's window: the resolve comes this long after the flagged reading


def statuses(got: list[Received]) -> list[str]:
    return [r.body["status"] for r in got]


def wait(check: object, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {seconds} s")
        time.sleep(0.05)


@pytest.mark.slow
def test_an_anomaly_reaches_a_webhook_and_alertmanager_within_10_s_once_then_resolves(
    tmp_path: Path,
) -> None:
    (device,) = fleet_names(1, 0)
    db = f"sqlite:///{tmp_path / 'weather.db'}"
    env = {
        **os.environ,
        "WEATHERPIPE_DATABASE_URL": db,
        "WEATHERPIPE_SPOOL_PATH": str(tmp_path / "spool"),
    }
    env.pop("WEATHERPIPE_BUS_URL", None)
    # Ten minutes of history, so the device's detector is past its warm-up when `up` starts.
    cli = [sys.executable, "-m", "weatherpipe"]
    history = [
        *cli,
        "sensors",
        "--backfill",
        "10m",
        "--to-db",
        "--devices",
        "1",
        "--anomaly-rate",
        "0",
    ]
    subprocess.run(history, env=env, check=True, capture_output=True, timeout=120)
    with http_receiver() as hook, alertmanager(tmp_path) as am:
        alerts = tmp_path / "alerts.toml"
        alerts.write_text(
            "interval_seconds = 0.5\n"
            f'[[receivers]]\nname = "hook"\ntype = "webhook"\nurl = "{hook.url}/alerts"\n'
            f'[[receivers]]\nname = "am"\ntype = "alertmanager"\nurl = "{am.url}"\n'
            f'[[rules]]\nname = "anomalies"\ntype = "anomaly"\n'
            f"clear_minutes = {CLEAR_SECONDS / 60}\n"
        )
        port = free_port()
        up = subprocess.Popen(
            [*cli, "up", "--devices", "1", "--anomaly-rate", "0", "--port", str(port)],
            env={**env, "WEATHERPIPE_ALERTS_FILE": str(alerts)},
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
        )
        base = f"http://127.0.0.1:{port}"
        try:

            def monitoring() -> bool:
                try:
                    rows = httpx.get(f"{base}/api/v1/devices", timeout=2).json()
                except httpx.HTTPError:
                    return False
                return any(
                    d["device_id"] == device and d["detection"] == "monitoring" for d in rows
                )

            wait(monitoring, 60, "detection caught up with the history")
            quiet = list(hook.requests)
            # The anomaly: a reading far outside what outdoor air can be.
            ts = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            reading = {"device_id": device, "ts": ts, "temperature": 85.0}
            answer = httpx.post(f"{base}/api/v1/telemetry", json=reading, timeout=10)
            assert answer.status_code == 202, answer.text
            stored = datetime.now(UTC)

            got = hook.wait_for(lambda got: "firing" in statuses(got[len(quiet) :]), 10)
            to_hook = next(r.at for r in got[len(quiet) :] if r.body["status"] == "firing") - stored

            def in_alertmanager() -> bool:
                return any(a["labels"].get("device_id") == device for a in am.alerts())

            wait(in_alertmanager, 10, "the alert in Alertmanager")
            to_am = datetime.now(UTC) - stored
            (firing,) = [r.body for r in got[len(quiet) :] if r.body["status"] == "firing"]
            (alert,) = firing["alerts"]
            opened = datetime.fromisoformat(alert["started_at"]) - stored
            assert alert["device_id"] == device
            assert alert["summary"].startswith("range anomaly (high)")

            resolved = hook.wait_for(
                lambda got: "resolved" in statuses(got[len(quiet) :]), CLEAR_SECONDS + 10
            )
            wait(lambda: not in_alertmanager(), 10, "the resolve in Alertmanager")
            assert statuses(resolved[len(quiet) :]) == ["firing", "resolved"]  # once each
            metrics = httpx.get(f"{base}/metrics", timeout=5).text
            assert 'weatherpipe_alert_attempts_total{outcome="delivered",receiver="am"}' in metrics
        finally:
            up.send_signal(signal.SIGINT)
            _, stderr = up.communicate(timeout=30)
    assert up.returncode == 0, stderr
    assert "alert anomalies fired for" in stderr
    print(
        f"\nanomaly stored -> incident opened {opened.total_seconds():.2f} s, "
        f"-> webhook {to_hook.total_seconds():.2f} s, "
        f"-> seen in Alertmanager {to_am.total_seconds():.2f} s"
    )
    assert to_hook < timedelta(seconds=10) and to_am < timedelta(seconds=10)
