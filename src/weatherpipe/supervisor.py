"""`weatherpipe up --processes`: each stage a child process, restarted with backoff when it dies."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pydantic import SecretStr

from weatherpipe.config import ENV_PREFIX, Settings
from weatherpipe.errors import ConfigError
from weatherpipe.lifecycle import pause

if TYPE_CHECKING:
    from weatherpipe.storage.repository import Repository

log = logging.getLogger(__name__)

STAGES = ("sensors", "ingest", "detect", "api")
# A stage whose command is more than its name; `alerts` runs only with an alerts file.
SUBCOMMANDS = {"alerts": ("alerts", "run")}
FIRST_BACKOFF = 1.0
MAX_BACKOFF = 30.0
# A child that ran this long before dying was healthy: its next restart is quick again.
STABLE_SECONDS = 60.0
# SIGTERM, then SIGKILL whatever still runs after this, so a stop takes under 10 s.
GRACE_SECONDS = 8.0
PR_SET_PDEATHSIG = 1  # from <sys/prctl.h>


def check_bus(settings: Settings) -> None:
    """Child processes need a bus they can share; memory:// lives inside one process."""
    from weatherpipe.compose import open_bus

    if not open_bus(settings).crosses_processes:
        raise ConfigError(
            "WEATHERPIPE_BUS_URL: --processes needs a bus that crosses processes "
            "(nats://, mqtt:// or pubsub://); memory:// lives inside one process"
        )


def child_environment(settings: Settings, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The parent's environment plus every setting as its variable, so CLI overrides and .env
    values reach the children exactly as the parent resolved them."""
    env = dict(os.environ if base is None else base)
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()  # the child needs the secret, not its mask
        text = str(value).lower() if isinstance(value, bool) else str(value)
        env[ENV_PREFIX + name.upper()] = text
    return env


def describe_exit(returncode: int) -> str:
    """`exited with status 3` or `was killed by signal SIGKILL` (asyncio reports -N)."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = str(-returncode)
        return f"was killed by signal {name}"
    return f"exited with status {returncode}"


def _die_with_parent() -> None:
    """In the child, before exec: on Linux, get SIGTERM when the supervisor dies, even by
    SIGKILL, so no stage is left running unsupervised (elsewhere this does nothing)."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Child:
    """One supervised stage and its restart history."""

    stage: str
    argv: list[str]
    process: asyncio.subprocess.Process | None = None
    backoff: float = FIRST_BACKOFF
    exits: list[int] = field(default_factory=list)


class Supervisor:
    """Starts each stage, restarts a crashed one with exponential backoff, stops them all."""

    def __init__(
        self,
        commands: Mapping[str, Sequence[str]],
        env: Mapping[str, str],
        *,
        first_backoff: float = FIRST_BACKOFF,
        max_backoff: float = MAX_BACKOFF,
    ) -> None:
        self.children = {stage: Child(stage, list(argv)) for stage, argv in commands.items()}
        self.env = dict(env)
        self.first_backoff = first_backoff
        self.max_backoff = max_backoff

    async def run(self, stop: asyncio.Event) -> None:
        """Keep every child running until `stop`, then stop them all."""
        tasks = [
            asyncio.create_task(self._keep(c, stop), name=c.stage) for c in self.children.values()
        ]
        try:
            await stop.wait()
        finally:
            stop.set()
            await self._stop_all()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _keep(self, child: Child, stop: asyncio.Event) -> None:
        child.backoff = self.first_backoff
        while not stop.is_set():
            started = time.monotonic()
            child.process = await asyncio.create_subprocess_exec(
                *child.argv, env=self.env, preexec_fn=_die_with_parent
            )
            log.info("started %s (pid %d)", child.stage, child.process.pid)
            returncode = await child.process.wait()
            if stop.is_set():
                return
            ran = time.monotonic() - started
            child.exits.append(returncode)
            if ran >= STABLE_SECONDS:
                child.backoff = self.first_backoff
            log.warning(
                "%s (pid %d) %s after %.1fs; restarting in %.1fs",
                child.stage,
                child.process.pid,
                describe_exit(returncode),
                ran,
                child.backoff,
            )
            await pause(child.backoff, stop)
            child.backoff = min(child.backoff * 2, self.max_backoff)

    async def _stop_all(self) -> None:
        running = [
            c.process for c in self.children.values() if c.process and c.process.returncode is None
        ]
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        waits = [asyncio.create_task(p.wait()) for p in running]
        if not waits:
            return
        _, late = await asyncio.wait(waits, timeout=GRACE_SECONDS)
        for process in running:
            if process.returncode is None:
                log.warning("pid %d did not stop in %.0fs; killing it", process.pid, GRACE_SECONDS)
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
        if late:
            await asyncio.wait(late)
        log.info("all stages stopped")


def stage_commands(stages: Sequence[str], sensor_args: Sequence[str] = ()) -> dict[str, list[str]]:
    """`python -m weatherpipe STAGE` for each stage (the sensors get their simulation options)."""
    python = sys.executable
    return {
        stage: [
            python,
            "-m",
            "weatherpipe",
            *SUBCOMMANDS.get(stage, (stage,)),
            *(sensor_args if stage == "sensors" else ()),
        ]
        for stage in stages
    }


async def run_supervised(
    settings: Settings,
    sensor_args: Sequence[str] = (),
    stop: asyncio.Event | None = None,
    names: Mapping[str, str] | None = None,
    on_ready: Callable[[], None] | None = None,
) -> None:
    """Migrate the database and set up the bus once, then supervise one process per stage.

    `names` (the simulated fleet's display names) are written to the devices table as ingest
    creates the devices: the API reads names from the database only. The API's port, the
    database and the bus are each tried first, so a start-up failure is one error here rather
    than a child restarted forever.
    """
    from weatherpipe.api.server import listen_socket
    from weatherpipe.compose import open_bus, open_repository
    from weatherpipe.lifecycle import stop_on_signals
    from weatherpipe.runner import name_devices_when_stored

    check_bus(settings)
    stages: tuple[str, ...] = STAGES
    if settings.alerts_file:
        from weatherpipe.compose import load_alerts_config

        load_alerts_config(settings)  # a bad file is one error here, not a child's restarts
        stages = (*STAGES, "alerts")
    stop = stop or stop_on_signals()
    listen_socket(settings.api_host, settings.api_port).close()
    repo = open_repository(settings)  # once, before the children would race to migrate
    try:
        async with open_bus(settings) as bus:
            await bus.setup()
        if on_ready:
            on_ready()
        naming = asyncio.create_task(name_devices_when_stored(repo, names or {}, stop))
        # Retention runs here, in the supervisor, as it does inside plain `up`.
        pruning = asyncio.create_task(_prune(settings, repo, stop))
        try:
            await Supervisor(stage_commands(stages, sensor_args), child_environment(settings)).run(
                stop
            )
        finally:
            stop.set()  # the naming and pruning tasks return at once
            await naming
            await pruning
    finally:
        repo.close()


async def _prune(settings: Settings, repo: Repository, stop: asyncio.Event) -> None:
    """Prune every WEATHERPIPE_PRUNE_EVERY seconds (0: not at all) until `stop`."""
    from weatherpipe.compose import make_pruner

    if settings.prune_every > 0:
        await make_pruner(settings, repo).run(stop, settings.prune_every)
