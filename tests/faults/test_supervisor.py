"""`weatherpipe up --processes`: a SIGKILLed stage is restarted and logged; SIGTERM stops all."""

from __future__ import annotations

import json
import os
import re
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from .conftest import StartStage
from .harness import STOP_SECONDS, Consumer, Database, Report, Stage, free_port, wait_for

STAGES = ("sensors", "ingest", "detect", "api")


def json_records(stage: Stage) -> list[dict[str, Any]]:
    """The JSON log records (the CLI's own one-line summaries are plain text)."""
    return [json.loads(line) for line in stage.log().splitlines() if line.startswith("{")]


def started_pids(stage: Stage) -> dict[str, list[int]]:
    pids: dict[str, list[int]] = {}
    for record in json_records(stage):
        match = re.fullmatch(r"started (\w+) \(pid (\d+)\)", record["message"])
        if match:
            pids.setdefault(match.group(1), []).append(int(match.group(2)))
    return pids


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow
def test_a_killed_stage_is_restarted_and_sigterm_stops_every_child(
    shared_nats: Consumer,
    mariadb_url: str,
    start_stage: StartStage,
    tmp_path: Path,
    report: Report,
) -> None:
    up = start_stage(
        "up",
        "--processes",
        f"--port={free_port()}",
        "--devices=5",
        "--rate=5",
        log="up",
        database_url=mariadb_url,
        bus_url=shared_nats.bus.url,
        topic=shared_nats.bus.topic,
        subscription=shared_nats.bus.subscription,
        log_json="true",
        spool_path=str(tmp_path / "spool"),
    )
    db = Database(mariadb_url)
    pids = wait_for(
        lambda: (p := started_pids(up)) and set(p) == set(STAGES) and p, 60, "four stages"
    )
    wait_for(lambda: db.stored() > 50, 60, "readings stored by the child processes")

    victim = pids["ingest"][0]
    os.kill(victim, signal.SIGKILL)
    killed = time.monotonic()
    restarted = wait_for(lambda: len(started_pids(up).get("ingest", [])) == 2, 30, "a new ingest")
    report["restart_seconds"] = time.monotonic() - killed
    assert restarted
    why = [r for r in json_records(up) if r["message"].startswith(f"ingest (pid {victim}) ")]
    assert why and "was killed by signal SIGKILL" in why[0]["message"], why
    assert why[0]["level"] == "WARNING" and why[0]["logger"] == "weatherpipe.supervisor"
    before = db.stored()
    wait_for(lambda: db.stored() > before + 25, 30, "the new ingest storing readings")
    stages_logging = {r.get("stage") for r in json_records(up)}
    assert {"up", "detect", "api"} <= stages_logging  # the stages that log at INFO

    children = [pid for stage_pids in started_pids(up).values() for pid in stage_pids]
    report["stop_seconds"] = up.terminate()
    assert up.process.returncode == 0, up.log()
    assert report.values["stop_seconds"] < STOP_SECONDS
    assert not any(alive(pid) for pid in children)
    report["restart_reason_logged"] = why[0]["message"]
    report.write()
    db.close()
