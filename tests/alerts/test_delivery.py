"""Delivery to a real HTTP receiver: retries with backoff, giving up, the log of attempts, a
restart mid-retry, and what the webhook and Slack receivers get."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.alerts.receiver import http_receiver
from weatherpipe.alerts.delivery import Deliverer, backoff
from weatherpipe.alerts.job import AlertsJob
from weatherpipe.alerts.rules import AlertsConfig
from weatherpipe.storage.alerts import Attempt, NewNotification
from weatherpipe.storage.repository import Repository, Scored
from weatherpipe.testing import DEVICE_A, series


def flagged_device(repo: Repository, device: str = DEVICE_A) -> None:
    """A device whose reading of a few seconds ago is a high spike."""
    now = datetime.now(UTC)
    repo.store_batch(series([20.0] * 20, device, start=now - timedelta(seconds=19)))
    rows = repo.readings_after(device, None, 100)
    repo.save_detection(
        "default", device, rows[-1][1], "{}", [Scored(rows[-3][0], 0.95, True, "spike", "high")]
    )


def alerts_config(url: str, kind: str = "webhook", **top: Any) -> AlertsConfig:
    return AlertsConfig.model_validate(
        {
            "interval_seconds": 0.2,
            "first_retry_seconds": 0.2,
            **top,
            "receivers": [
                {
                    "name": "hook",
                    "type": kind,
                    "url": url,
                    "headers": {"Authorization": "Bearer t0k"},
                }
            ],
            "rules": [{"name": "spikes", "type": "anomaly", "kinds": ["spike"]}],
        }
    )


def run_until(job: AlertsJob, done: Any, seconds: float = 10.0) -> None:
    """Run the job until `done()` holds (polled), then stop it; fail at the deadline."""

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(job.run(stop))
        deadline = time.monotonic() + seconds
        try:
            while not await asyncio.to_thread(done):
                assert time.monotonic() < deadline, "not done in time"
                assert not task.done(), task.exception()
                await asyncio.sleep(0.05)
        finally:
            stop.set()
            await task

    asyncio.run(scenario())


def delivered(repo: Repository) -> bool:
    log = repo.delivery_log(10)
    return bool(log) and all(n["state"] != "pending" for n in log)


def test_a_500_then_200_is_one_delivered_notification_with_both_attempts_logged(
    sqlite_repo: Repository,
) -> None:
    flagged_device(sqlite_repo)
    with http_receiver(statuses=[500]) as receiver:
        job = AlertsJob(sqlite_repo, alerts_config(receiver.url + "/hook"))
        run_until(job, lambda: delivered(sqlite_repo))
        got = receiver.requests
    assert len(got) == 2 and got[0].body == got[1].body
    body = got[1].body
    assert got[1].path == "/hook" and got[1].headers["Authorization"] == "Bearer t0k"
    assert body["status"] == "firing" and body["rule"] == "spikes" and body["receiver"] == "hook"
    (alert,) = body["alerts"]
    assert alert["device_id"] == DEVICE_A and alert["summary"].startswith("spike anomaly (high)")
    (note,) = sqlite_repo.delivery_log(10)
    assert (note["state"], note["attempts"], note["last_error"]) == ("delivered", 2, None)
    first, second = note["attempt_log"]
    assert (first["ok"], first["http_status"]) == (False, 500)
    assert "receiver says no" in first["error"]
    assert (second["ok"], second["http_status"]) == (True, 200)
    assert second["at"] - first["at"] >= timedelta(seconds=0.2)  # the backoff was waited


def test_a_refusal_is_not_retried_and_a_dead_receiver_is_given_up(sqlite_repo: Repository) -> None:
    flagged_device(sqlite_repo)
    with http_receiver(statuses=[400]) as receiver:
        run_until(
            AlertsJob(sqlite_repo, alerts_config(receiver.url)), lambda: delivered(sqlite_repo)
        )
        assert len(receiver.requests) == 1
    (note,) = sqlite_repo.delivery_log(10)
    assert (note["state"], note["attempts"]) == ("failed", 1)

    sqlite_repo.record_incidents(
        [], [(i["id"], datetime.now(UTC)) for i in sqlite_repo.open_incidents()], []
    )
    with http_receiver(statuses=[503] * 10) as receiver:
        config = alerts_config(receiver.url, max_attempts=3, first_retry_seconds=0.1)
        job = AlertsJob(sqlite_repo, config)  # the incident opens again: a new notification
        run_until(job, lambda: len(sqlite_repo.delivery_log(10)) == 2 and delivered(sqlite_repo))
        assert len(receiver.requests) == 3
    newest = sqlite_repo.delivery_log(10)[0]
    assert (newest["state"], newest["attempts"]) == ("failed", 3)
    assert [a["http_status"] for a in newest["attempt_log"]] == [503, 503, 503]


def test_backoff_doubles_up_to_its_cap() -> None:
    config = alerts_config("http://127.0.0.1:9", first_retry_seconds=2, max_retry_seconds=10)
    assert [backoff(config, n) for n in (1, 2, 3, 4, 5)] == [2, 4, 8, 10, 10]


def test_slack_gets_text_and_a_grouped_list(sqlite_repo: Repository) -> None:
    flagged_device(sqlite_repo, DEVICE_A)
    flagged_device(sqlite_repo, "greenhouse-01")
    sqlite_repo.name_devices({"greenhouse-01": "Greenhouse"})
    with http_receiver() as receiver:
        job = AlertsJob(sqlite_repo, alerts_config(receiver.url, "slack"))
        run_until(job, lambda: delivered(sqlite_repo))
        (got,) = receiver.requests
    assert list(got.body) == ["text"]
    lines = got.body["text"].splitlines()
    assert lines[0] == "*[FIRING] spikes: 2 devices* (warning)"
    assert sorted(line.split(":")[0] for line in lines[1:]) == [f"• {DEVICE_A}", "• Greenhouse"]


def test_the_outbox_on_every_database(repo: Repository) -> None:
    now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    note_id = repo.add_notification(NewNotification("r", "hook", "firing", '{"a": 1}', now))
    (due,) = repo.due_notifications(now, 10)
    assert due["id"] == note_id and due["payload"] == '{"a": 1}' and due["created_at"] == now
    hold = now + timedelta(seconds=30)
    assert repo.claim_notification(note_id, now, hold)
    assert not repo.claim_notification(note_id, now, hold)  # another sender: refused
    assert repo.due_notifications(now, 10) == []
    later = now + timedelta(seconds=2)
    repo.record_attempt(Attempt(note_id, 1, now, False, 502, "bad gateway", 0.01, "pending", later))
    assert repo.due_notifications(now, 10) == []  # not due yet
    assert [n["id"] for n in repo.due_notifications(later, 10)] == [note_id]
    repo.record_attempt(Attempt(note_id, 2, later, True, 200, None, 0.02, "delivered", later))
    (logged,) = repo.delivery_log(5)
    assert (logged["state"], logged["attempts"], logged["delivered_at"]) == ("delivered", 2, later)
    assert [(a["attempt"], a["ok"], a["http_status"]) for a in logged["attempt_log"]] == [
        (1, False, 502),
        (2, True, 200),
    ]


def test_a_restart_mid_retry_delivers_once_after_the_backoff(
    tmp_path: Path, sqlite_url: str
) -> None:
    repo = Repository.from_url(sqlite_url)
    from weatherpipe.storage.engine import upgrade

    upgrade(repo.engine)
    flagged_device(repo)
    with http_receiver(statuses=[500]) as receiver:
        alerts = tmp_path / "alerts.toml"
        alerts.write_text(
            "interval_seconds = 0.2\nfirst_retry_seconds = 3\n"
            f'[[receivers]]\nname = "hook"\ntype = "webhook"\nurl = "{receiver.url}"\n'
            '[[rules]]\nname = "spikes"\ntype = "anomaly"\n'
        )
        env = {**os.environ, "WEATHERPIPE_DATABASE_URL": sqlite_url}
        command = [sys.executable, "-m", "weatherpipe", "alerts", "run", "--file", str(alerts)]

        def attempts() -> int:
            log = repo.delivery_log(10)
            return log[0]["attempts"] if log else 0

        first = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
        try:
            poll(lambda: attempts() == 1, 20)
        finally:
            first.send_signal(signal.SIGKILL)  # mid-retry: the next try is 3 s away
            first.wait(10)
        assert len(receiver.requests) == 1
        second = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
        try:
            poll(lambda: delivered(repo), 20)
            (note,) = repo.delivery_log(10)
            time_between = note["attempt_log"][1]["at"] - note["attempt_log"][0]["at"]
        finally:
            second.send_signal(signal.SIGTERM)
            _, stderr = second.communicate(timeout=20)
        assert second.returncode == 0, stderr
        assert len(receiver.requests) == 2
    assert (note["state"], note["attempts"]) == ("delivered", 2)
    assert time_between >= timedelta(seconds=3)  # the backoff outlived the process
    assert len(repo.incidents()) == 1
    repo.close()


def poll(check: Any, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"not true within {seconds}s")
        time.sleep(0.05)


def test_the_deliverer_sends_nothing_when_nothing_is_due(sqlite_repo: Repository) -> None:
    sent: list[Any] = []
    deliverer = Deliverer(
        sqlite_repo, alerts_config("http://127.0.0.1:9"), sender=lambda *a: sent.append(a)
    )
    assert asyncio.run(deliverer.deliver_due()) == 0 and sent == []
