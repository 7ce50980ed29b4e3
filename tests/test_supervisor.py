"""The supervisor: restarts a crashing child with growing waits, logs why, stops everything."""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from weatherpipe.config import load_settings
from weatherpipe.errors import ConfigError
from weatherpipe.supervisor import Supervisor, check_bus, child_environment, describe_exit

PY = sys.executable


def test_a_crashing_child_is_restarted_with_exponential_backoff(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="weatherpipe.supervisor")
    supervisor = Supervisor(
        {"crasher": [PY, "-c", "import sys; sys.exit(3)"]},
        {},
        first_backoff=0.1,
        max_backoff=0.4,
    )

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(supervisor.run(stop))
        deadline = time.monotonic() + 60
        while len(supervisor.children["crasher"].exits) < 5:
            assert time.monotonic() < deadline, "fewer than 5 restarts in 60 s"
            await asyncio.sleep(0.05)
        stop.set()
        await task

    asyncio.run(scenario())
    child = supervisor.children["crasher"]
    assert child.exits[:5] == [3] * 5
    waits = [r.getMessage() for r in caplog.records if "restarting in" in r.getMessage()]
    assert "exited with status 3" in waits[0]
    assert [w.rsplit("restarting in ", 1)[1] for w in waits[:5]] == [
        "0.1s",
        "0.2s",
        "0.4s",
        "0.4s",
        "0.4s",
    ]
    # The waits really happen: from each "restarting in" to the next start, measured. Only a
    # lower bound is asserted; a busy machine may add time, never remove it.
    events = [
        (r.created, r.getMessage())
        for r in caplog.records
        if "restarting in" in r.getMessage() or r.getMessage().startswith("started crasher")
    ]
    gaps = [
        later - at
        for (at, said), (later, then) in itertools.pairwise(events)
        if "restarting in" in said and then.startswith("started crasher")
    ]
    assert len(gaps) >= 4
    for gap, wanted in zip(gaps, [0.1, 0.2, 0.4, 0.4], strict=False):
        assert gap >= wanted * 0.95, f"restarted after {gap:.3f}s, backoff {wanted}s"


def ignores_sigterm(pid: int) -> bool:
    """Whether the process has set SIGTERM to ignored (Linux: the SigIgn mask in /proc)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    mask = next(line.split()[1] for line in status.splitlines() if line.startswith("SigIgn:"))
    return bool(int(mask, 16) & (1 << (signal.SIGTERM - 1)))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_stop_terminates_children_and_kills_one_that_ignores_sigterm() -> None:
    stubborn = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"
    supervisor = Supervisor(
        {"polite": [PY, "-c", "import time; time.sleep(60)"], "stubborn": [PY, "-c", stubborn]},
        {},
    )

    async def scenario() -> float:
        stop = asyncio.Event()
        task = asyncio.create_task(supervisor.run(stop))
        deadline = time.monotonic() + 60
        while not all(c.process for c in supervisor.children.values()):
            assert time.monotonic() < deadline, "children not started in 60 s"
            await asyncio.sleep(0.05)
        stubborn_pid = supervisor.children["stubborn"].process.pid  # type: ignore[union-attr]
        while not ignores_sigterm(stubborn_pid):  # its handler installed: now it is stubborn
            assert time.monotonic() < deadline, "the stubborn child never ignored SIGTERM"
            await asyncio.sleep(0.05)
        began = time.monotonic()
        stop.set()
        await task
        return time.monotonic() - began

    took = asyncio.run(scenario())
    assert took < 10
    processes = {name: c.process for name, c in supervisor.children.items()}
    assert processes["polite"] and processes["polite"].returncode == -15
    assert processes["stubborn"] and processes["stubborn"].returncode == -9


def test_exit_reasons_name_the_status_or_the_signal() -> None:
    assert describe_exit(2) == "exited with status 2"
    assert describe_exit(-9) == "was killed by signal SIGKILL"
    assert describe_exit(-15) == "was killed by signal SIGTERM"


def test_processes_refuse_the_in_process_bus() -> None:
    with pytest.raises(ConfigError, match="WEATHERPIPE_BUS_URL: --processes needs a bus"):
        check_bus(load_settings(bus_url="memory://"))
    check_bus(load_settings(bus_url="nats://127.0.0.1:4222"))


def test_children_get_every_setting_as_the_parent_resolved_it() -> None:
    settings = load_settings(
        bus_url="nats://10.0.0.1:4222", batch_size=500, log_json=True, api_token="tok-1234"
    )
    env = child_environment(settings, base={"PATH": "/bin"})
    assert env["WEATHERPIPE_API_TOKEN"] == "tok-1234"  # the secret itself, not its mask
    assert env["PATH"] == "/bin"
    assert env["WEATHERPIPE_BUS_URL"] == "nats://10.0.0.1:4222"
    assert env["WEATHERPIPE_BATCH_SIZE"] == "500"
    assert env["WEATHERPIPE_LOG_JSON"] == "true"
    assert "WEATHERPIPE_DEVICE_KEYS" not in env


def running(pid: int) -> bool:
    """Alive and not a zombie waiting for whoever adopted it to reap it."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_children_stop_when_the_supervisor_is_killed_outright() -> None:
    script = (
        "import asyncio, logging, sys\n"
        "from weatherpipe.supervisor import Supervisor\n"
        "logging.basicConfig(level=logging.INFO, stream=sys.stdout, format='%(message)s')\n"
        "sleeper = {'sleeper': [sys.executable, '-c', 'import time; time.sleep(60)']}\n"
        "asyncio.run(Supervisor(sleeper, {}).run(asyncio.Event()))\n"
    )
    supervisor = subprocess.Popen([PY, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert supervisor.stdout is not None
        line = supervisor.stdout.readline()
        child = int(re.fullmatch(r"started sleeper \(pid (\d+)\)\n", line).group(1))  # type: ignore[union-attr]
        assert running(child)
        supervisor.kill()
        supervisor.wait(timeout=10)
        deadline = time.monotonic() + 10
        while running(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not running(child)
    finally:
        supervisor.kill()
        supervisor.wait(timeout=10)
