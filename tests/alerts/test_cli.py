"""`weatherpipe alerts test|log|check` as an operator runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.alerts.receiver import http_receiver

CLI = [sys.executable, "-m", "weatherpipe", "alerts"]


def run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """The command in `cwd` (a SQLite default would land there, never in the repository)."""
    return subprocess.run(
        [*CLI, *args], env=env, capture_output=True, text=True, timeout=60, cwd=cwd
    )


def test_alerts_test_prints_each_outcome_and_the_log_keeps_them(
    tmp_path: Path, sqlite_url: str
) -> None:
    with http_receiver(statuses=[200, 500]) as ok, http_receiver(statuses=[503]) as down:
        alerts = tmp_path / "alerts.toml"
        alerts.write_text(
            f'[[receivers]]\nname = "ops"\ntype = "webhook"\nurl = "{ok.url}"\n'
            f'[[receivers]]\nname = "chat"\ntype = "slack"\nurl = "{down.url}/services/T0/B0/x"\n'
        )
        env = {
            **os.environ,
            "WEATHERPIPE_DATABASE_URL": sqlite_url,
            "WEATHERPIPE_ALERTS_FILE": str(alerts),
        }
        one = run(["test", "--receiver", "ops"], env, tmp_path)
        assert one.returncode == 0, one.stderr
        assert one.stdout.startswith("ops (webhook): delivered (HTTP 200 in ")
        both = run(["test"], env, tmp_path)
        assert both.returncode == 1
        lines = both.stdout.splitlines()
        assert lines[0].startswith("ops (webhook): failed (HTTP 500 after ")
        assert lines[1].startswith("chat (slack): failed (HTTP 503 after ")
        assert ok.requests[0].body["status"] == "test"
        assert down.requests[0].body["text"].startswith("*[TEST] weatherpipe-test")
        unknown = run(["test", "--receiver", "pager"], env, tmp_path)
        assert unknown.returncode == 2
        assert unknown.stderr.strip() == (
            "weatherpipe: alerts test: no receiver named 'pager' (there are: ops, chat)"
        )
    log = run(["log"], env, tmp_path)
    assert log.returncode == 0, log.stderr
    text = log.stdout
    assert text.count("weatherpipe-test test -> ") == 3
    assert "-> ops: delivered after 1 attempt(s)" in text
    assert "-> chat: failed after 1 attempt(s)" in text
    assert "#1 " in text and "failed HTTP 503" in text


def test_alerts_check_lists_the_file_and_a_bad_file_is_one_line(tmp_path: Path) -> None:
    alerts = tmp_path / "alerts.toml"
    alerts.write_text(
        '[[receivers]]\nname = "ops"\ntype = "webhook"\nurl = "http://127.0.0.1:9/x"\n'
        '[[rules]]\nname = "quiet"\ntype = "silence"\nminutes = 10\n'
    )
    env = {**os.environ, "WEATHERPIPE_ALERTS_FILE": str(alerts)}
    good = run(["check"], env, tmp_path)
    assert good.returncode == 0, good.stderr
    assert good.stdout.splitlines() == [
        "receiver  ops: webhook",
        "rule      quiet: silence on every device -> ops",
    ]
    alerts.write_text(alerts.read_text().replace("minutes = 10", "minutes = 'ten'"))
    bad = run(["check"], env, tmp_path)
    assert bad.returncode == 2
    assert bad.stderr.strip() == (
        f"weatherpipe: WEATHERPIPE_ALERTS_FILE {alerts}: rules['quiet'].minutes: "
        "Input should be a valid number, unable to parse string as a number (got 'ten')"
    )
    env.pop("WEATHERPIPE_ALERTS_FILE")
    unset = run(["run"], env, tmp_path)
    assert unset.returncode == 2 and "WEATHERPIPE_ALERTS_FILE: not set" in unset.stderr
    assert not (tmp_path / "weather.db").exists()  # stopped before opening the database


def test_up_with_a_bad_alerts_file_stops_at_once_with_one_line(tmp_path: Path) -> None:
    alerts = tmp_path / "alerts.toml"
    alerts.write_text('[[receivers]]\nname = "ops"\ntype = "webhook"\nurl = "ftp://x"\n')
    env = {**os.environ, "WEATHERPIPE_ALERTS_FILE": str(alerts)}
    env.pop("WEATHERPIPE_DATABASE_URL", None)
    expected = (
        f"weatherpipe: WEATHERPIPE_ALERTS_FILE {alerts}: receivers['ops'].url: must be an "
        "http:// or https:// URL (got 'ftp://x')"
    )
    for extra in ([], ["--processes", "--bus-url", "nats://127.0.0.1:4222"]):
        result = subprocess.run(
            [sys.executable, "-m", "weatherpipe", "up", *extra],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
        )
        assert result.returncode == 2, result.stderr
        assert result.stderr.strip() == expected
        assert not (tmp_path / "weather.db").exists()  # nothing was opened
