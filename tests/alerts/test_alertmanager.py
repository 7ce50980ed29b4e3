"""A real Alertmanager: an incident arrives with its labels, and its resolve ends it there;
`alerts test` reaches it too."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.alerts.alertmanager import alertmanager
from tests.alerts.test_delivery import delivered, run_until
from weatherpipe.alerts.job import AlertsJob, send_test
from weatherpipe.alerts.rules import AlertsConfig
from weatherpipe.storage.repository import Repository, Scored
from weatherpipe.testing import DEVICE_A, series


def test_an_incident_fires_and_resolves_in_alertmanager(
    tmp_path: Path, sqlite_repo: Repository
) -> None:
    now = datetime.now(UTC)
    sqlite_repo.store_batch(series([20.0] * 10, DEVICE_A, start=now - timedelta(seconds=9)))
    rows = sqlite_repo.readings_after(DEVICE_A, None, 100)
    flagged = Scored(rows[-1][0], 1.0, True, "range", "high")
    sqlite_repo.save_detection("default", DEVICE_A, rows[-1][1], "{}", [flagged])
    with alertmanager(tmp_path) as am:
        config = AlertsConfig.model_validate(
            {
                "interval_seconds": 0.2,
                "receivers": [{"name": "am", "type": "alertmanager", "url": am.url}],
                # The flag leaves the window 3 s after its reading: fire, then resolve.
                "rules": [
                    {
                        "name": "out-of-range",
                        "type": "anomaly",
                        "clear_minutes": 0.05,
                        "severity": "page",
                    }
                ],
            }
        )
        job = AlertsJob(sqlite_repo, config)
        run_until(job, lambda: delivered(sqlite_repo) and len(sqlite_repo.delivery_log(5)) == 1)
        (alert,) = am.alerts()
        assert alert["labels"] == {
            "alertname": "out-of-range",
            "device_id": DEVICE_A,
            "severity": "page",
            "source": "weatherpipe",
            "rule_type": "anomaly",
        }
        assert alert["annotations"]["summary"].startswith("range anomaly (high)")
        assert alert["status"]["state"] == "active"
        run_until(job, lambda: len(sqlite_repo.delivery_log(5)) == 2 and delivered(sqlite_repo))
        assert am.alerts() == []  # the resolve's endsAt ended it
        statuses = [n["status"] for n in sqlite_repo.delivery_log(5)]
        assert statuses == ["resolved", "firing"]

        (result,) = send_test(sqlite_repo, config)
        assert result[1].ok and result[1].http_status == 200
        (test_alert,) = am.alerts()
        assert test_alert["labels"]["alertname"] == "weatherpipe-test"
