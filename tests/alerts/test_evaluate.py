"""Rules against a real database (SQLite, MariaDB, PostgreSQL): incidents open once, group per
rule and receiver, resolve when the condition clears; every kind of rule."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from weatherpipe.alerts.evaluate import Evaluator
from weatherpipe.alerts.rules import AlertsConfig
from weatherpipe.storage.repository import Repository, Scored
from weatherpipe.testing import DEVICE_A, DEVICE_B, series

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
RECEIVERS = [
    {"name": "hook", "type": "webhook", "url": "http://127.0.0.1:9/hook"},
    {"name": "am", "type": "alertmanager", "url": "http://127.0.0.1:9"},
]


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


def config(*rules: dict[str, Any]) -> AlertsConfig:
    return AlertsConfig.model_validate({"receivers": RECEIVERS, "rules": list(rules)})


def store(repo: Repository, device: str, values: list[float], end: datetime = NOW) -> None:
    """One reading a second, the last at `end`, stored as they happened."""
    start = end - timedelta(seconds=len(values) - 1)
    repo.store_batch(series(values, device, start=start), received_at=end)


def flag(repo: Repository, device: str, back: int, kind: str, severity: str) -> None:
    """Flag the reading `back` seconds before the device's newest."""
    rows = repo.readings_after(device, None, 100_000)
    rid = rows[-1 - back][0]
    repo.save_detection(
        "default", device, rows[-1][1], "{}", [Scored(rid, 0.9, True, kind, severity)]
    )


def notes(repo: Repository) -> list[dict[str, Any]]:
    return sorted(repo.delivery_log(100), key=lambda n: n["id"])


def test_an_anomaly_opens_once_notifies_each_receiver_once_and_resolves(repo: Repository) -> None:
    store(repo, DEVICE_A, [20.0] * 60)
    flag(repo, DEVICE_A, 10, "spike", "high")
    clock = Clock()
    rule = {"name": "spikes", "type": "anomaly", "clear_minutes": 2}
    evaluator = Evaluator(repo, config(rule), clock=clock)

    first = evaluator.evaluate_once()
    assert [(i.rule, i.device_id) for i in first.opened] == [("spikes", DEVICE_A)]
    clock.now += timedelta(seconds=30)
    assert evaluator.evaluate_once().opened == []  # still firing: no second notification
    sent = notes(repo)
    assert [(n["receiver"], n["status"]) for n in sent] == [("hook", "firing"), ("am", "firing")]
    (open_incident,) = repo.open_incidents()
    assert "spike anomaly (high), score 0.90" in open_incident["summary"]

    clock.now = NOW + timedelta(minutes=2, seconds=1)  # the flag left the window
    changed = evaluator.evaluate_once()
    assert len(changed.resolved) == 1 and repo.open_incidents() == []
    assert [(n["receiver"], n["status"]) for n in notes(repo)[2:]] == [
        ("hook", "resolved"),
        ("am", "resolved"),
    ]
    assert evaluator.evaluate_once().notifications == []
    (incident,) = repo.incidents()
    assert incident["resolved_at"] == clock.now


def test_devices_firing_together_are_one_notification_per_receiver(repo: Repository) -> None:
    for device in (DEVICE_A, DEVICE_B):
        store(repo, device, [20.0] * 30)
        flag(repo, device, 5, "range", "high")
    repo.name_devices({DEVICE_A: "Roof"})
    evaluator = Evaluator(repo, config({"name": "any", "type": "anomaly"}), clock=Clock())
    changes = evaluator.evaluate_once()
    assert len(changes.opened) == 2
    assert [n.receiver for n in changes.notifications] == ["hook", "am"]
    payload = json.loads(changes.notifications[0].payload)
    assert payload["title"] == "[FIRING] any: 2 devices"
    names = {a["device_id"]: a["device_name"] for a in payload["alerts"]}
    assert names == {DEVICE_A: "Roof", DEVICE_B: None}


def test_kinds_severity_and_devices_narrow_an_anomaly_rule(repo: Repository) -> None:
    store(repo, DEVICE_A, [20.0] * 30)
    flag(repo, DEVICE_A, 5, "stuck", "low")
    store(repo, DEVICE_B, [20.0] * 30)
    flag(repo, DEVICE_B, 5, "spike", "medium")
    rules = [
        {"name": "spikes", "type": "anomaly", "kinds": ["spike", "dip"]},
        {"name": "serious", "type": "anomaly", "min_severity": "medium"},
        {"name": "only-a", "type": "anomaly", "devices": [DEVICE_A]},
        {"name": "high", "type": "anomaly", "min_severity": "high"},
    ]
    opened = Evaluator(repo, config(*rules), clock=Clock()).evaluate_once().opened
    assert sorted((i.rule, i.device_id) for i in opened) == [
        ("only-a", DEVICE_A),
        ("serious", DEVICE_B),
        ("spikes", DEVICE_B),
    ]


def test_threshold_on_the_latest_reading_and_held_for_minutes(repo: Repository) -> None:
    store(repo, DEVICE_A, [20.0] * 200 + [40.0] * 100)  # hot for the last 100 s
    store(repo, DEVICE_B, [40.0] * 300)  # hot for all of the last 5 minutes
    rules = [
        {"name": "hot-now", "type": "threshold", "above": 35},
        {"name": "hot-2min", "type": "threshold", "above": 35, "for_minutes": 2},
        {"name": "cold", "type": "threshold", "below": 0},
    ]
    clock = Clock()
    evaluator = Evaluator(repo, config(*rules), clock=clock)
    opened = evaluator.evaluate_once().opened
    assert sorted((i.rule, i.device_id) for i in opened) == sorted(
        [("hot-2min", DEVICE_B), ("hot-now", DEVICE_A), ("hot-now", DEVICE_B)]
    )
    assert any(i.summary == "40.00 °C is above 35 °C" for i in opened)
    store(repo, DEVICE_B, [20.0], end=NOW + timedelta(seconds=1))  # one cool reading
    clock.now += timedelta(seconds=1)
    resolved = evaluator.evaluate_once().resolved
    assert len(resolved) == 2  # both of DEVICE_B's
    assert {(i["rule"], i["device_id"]) for i in repo.open_incidents()} == {("hot-now", DEVICE_A)}


def test_silence_fires_for_a_quiet_device_and_resolves_when_it_sends(repo: Repository) -> None:
    store(repo, DEVICE_A, [20.0] * 10, end=NOW - timedelta(minutes=11))
    store(repo, DEVICE_B, [20.0] * 10)
    repo.add_device("provisioned-1", name="not sent yet")
    clock = Clock()
    evaluator = Evaluator(
        repo, config({"name": "quiet", "type": "silence", "minutes": 10}), clock=clock
    )
    (opened,) = evaluator.evaluate_once().opened
    assert opened.device_id == DEVICE_A and opened.summary.startswith("silent for 11.0 min")
    store(repo, DEVICE_A, [20.0], end=NOW + timedelta(seconds=5))
    clock.now += timedelta(seconds=6)
    assert len(evaluator.evaluate_once().resolved) == 1


def test_lag_rules_are_fleet_wide(repo: Repository) -> None:
    late = series([20.0] * 5, DEVICE_A, start=NOW - timedelta(seconds=100))
    repo.store_batch(late, received_at=NOW)  # stored ~96 s after their time
    rows = repo.readings_after(DEVICE_A, None, 10)
    repo.save_detection("default", DEVICE_A, rows[0][1], "{}", [])  # 4 s behind
    rules = [
        {"name": "ingest-slow", "type": "lag", "stage": "ingest", "seconds": 60},
        {"name": "detect-slow", "type": "lag", "stage": "detection", "seconds": 3},
        {"name": "detect-ok", "type": "lag", "stage": "detection", "seconds": 10},
    ]
    changes = Evaluator(repo, config(*rules), clock=Clock()).evaluate_once()
    assert sorted((i.rule, i.device_id) for i in changes.opened) == [
        ("detect-slow", ""),
        ("ingest-slow", ""),
    ]
    payload = json.loads(changes.notifications[0].payload)
    assert payload["title"].endswith(": the fleet")


def test_an_incident_another_process_opened_first_is_not_opened_again(repo: Repository) -> None:
    store(repo, DEVICE_A, [20.0] * 30)
    flag(repo, DEVICE_A, 5, "spike", "high")
    cfg = config({"name": "spikes", "type": "anomaly"})
    one, two = Evaluator(repo, cfg, clock=Clock()), Evaluator(repo, cfg, clock=Clock())
    racing = two.changes()  # decided before the other process committed
    one.evaluate_once()
    assert not repo.record_incidents(racing.opened, racing.resolved, racing.notifications)
    assert len(notes(repo)) == 2 and len(repo.open_incidents()) == 1
