"""The alerts stage among the others: a supervised child of `up --processes` that a restart does
not make repeat itself; Alertmanager kept told; the log in the API behind the token."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.alerts.alertmanager import free_port
from tests.alerts.receiver import http_receiver
from tests.alerts.test_delivery import flagged_device
from tests.conftest import require
from tests.faults.harness import Consumer
from weatherpipe.alerts.job import AlertsJob
from weatherpipe.alerts.rules import AlertsConfig
from weatherpipe.compose import make_api
from weatherpipe.config import load_settings
from weatherpipe.storage.repository import Repository
from weatherpipe.supervisor import stage_commands


def test_the_alerts_stage_runs_as_alerts_run() -> None:
    assert stage_commands(["alerts", "detect"])["alerts"][-3:] == ["weatherpipe", "alerts", "run"]


def started(log: str, stage: str) -> list[int]:
    return [int(pid) for pid in re.findall(rf"started {stage} \(pid (\d+)\)", log)]


@pytest.mark.slow
def test_a_killed_alerts_child_is_restarted_and_sends_nothing_twice(tmp_path: Path) -> None:
    require("NATS", "127.0.0.1", 4222)
    tag = uuid.uuid4().hex[:10]
    topic, subscription = f"wp_alerts_{tag}", f"wp_alerts_{tag}_sub"
    nats = Consumer("nats://127.0.0.1:4222", topic, subscription)
    log_path = tmp_path / "up.log"
    with http_receiver() as hook, log_path.open("w") as log:
        alerts = tmp_path / "alerts.toml"
        alerts.write_text(
            "interval_seconds = 0.5\n"
            f'[[receivers]]\nname = "hook"\ntype = "webhook"\nurl = "{hook.url}"\n'
            # One rule fires with the first reading, the other half a minute later.
            '[[rules]]\nname = "now"\ntype = "threshold"\nabove = -100\n'
            '[[rules]]\nname = "later"\ntype = "threshold"\nabove = -100\nfor_minutes = 0.5\n'
        )
        env = {
            **os.environ,
            "WEATHERPIPE_DATABASE_URL": f"sqlite:///{tmp_path / 'weather.db'}",
            "WEATHERPIPE_BUS_URL": "nats://127.0.0.1:4222",
            "WEATHERPIPE_TOPIC": topic,
            "WEATHERPIPE_SUBSCRIPTION": subscription,
            "WEATHERPIPE_SPOOL_PATH": str(tmp_path / "spool"),
            "WEATHERPIPE_ALERTS_FILE": str(alerts),
        }
        command = [sys.executable, "-m", "weatherpipe", "up", "--processes", "--devices", "1"]
        up = subprocess.Popen(
            [*command, "--anomaly-rate", "0", "--port", str(free_port())],
            env=env,
            stderr=log,
            cwd=tmp_path,
        )
        try:
            hook.wait_for(lambda got: [r.body["rule"] for r in got] == ["now"], 60)
            (first,) = started(log_path.read_text(), "alerts")
            os.kill(first, signal.SIGKILL)
            deadline = time.monotonic() + 30
            while len(started(log_path.read_text(), "alerts")) < 2:
                assert time.monotonic() < deadline, "the alerts child was not restarted"
                time.sleep(0.1)
            got = hook.wait_for(lambda got: len(got) >= 2, 60)
        finally:
            up.send_signal(signal.SIGTERM)
            up.wait(30)
            with contextlib.suppress(Exception):
                nats.delete()
    assert up.returncode == 0, log_path.read_text()
    assert [r.body["rule"] for r in got] == ["now", "later"]  # "now" not again after the restart
    assert (
        "alerts (pid" in log_path.read_text()
        and "was killed by signal SIGKILL" in log_path.read_text()
    )


def test_alertmanager_hears_again_of_what_still_fires(sqlite_repo: Repository) -> None:
    flagged_device(sqlite_repo)
    with http_receiver() as am:
        config = AlertsConfig.model_validate(
            {
                "receivers": [{"name": "am", "type": "alertmanager", "url": am.url}],
                "rules": [{"name": "spikes", "type": "anomaly"}],
            }
        )
        job = AlertsJob(sqlite_repo, config)
        job.evaluator.evaluate_once()
        job.resend_once(config.receivers)
        (again,) = am.requests
    assert again.path == "/api/v2/alerts"
    (alert,) = again.body
    assert alert["labels"]["alertname"] == "spikes" and "endsAt" not in alert
    assert datetime.fromisoformat(alert["startsAt"]) > datetime.now(UTC) - timedelta(minutes=1)


def test_the_api_serves_the_log_and_incidents_behind_the_token(sqlite_repo: Repository) -> None:
    flagged_device(sqlite_repo)
    config = AlertsConfig.model_validate(
        {
            "receivers": [{"name": "hook", "type": "webhook", "url": "http://127.0.0.1:9"}],
            "rules": [{"name": "spikes", "type": "anomaly"}],
        }
    )
    AlertsJob(sqlite_repo, config).evaluator.evaluate_once()
    settings = load_settings(database_url=str(sqlite_repo.engine.url), api_token="s3cret-token")
    with TestClient(make_api(settings, sqlite_repo)) as client:
        assert client.get("/api/v1/alerts/log").status_code == 401
        auth = {"Authorization": "Bearer s3cret-token"}
        (note,) = client.get("/api/v1/alerts/log", headers=auth).json()
        (incident,) = client.get("/api/v1/alerts/incidents", headers=auth).json()
        assert client.get("/api/v1/alerts/log?limit=0", headers=auth).status_code == 422
    assert (note["rule"], note["receiver"], note["state"], note["attempt_log"]) == (
        "spikes",
        "hook",
        "pending",
        [],
    )
    assert incident["rule"] == "spikes" and incident["resolved_at"] is None
