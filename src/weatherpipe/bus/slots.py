"""Per-host slots: a stable client id for each consumer process that no other process shares."""

from __future__ import annotations

import fcntl
import tempfile
from pathlib import Path
from typing import IO

from weatherpipe.errors import BusError

MAX_SLOTS = 64


class Slot:
    """A per-host lock that gives each concurrent consumer process its own stable client id.

    The first free slot is taken, so a restarted process resumes the session (and the unacked
    messages) of the one that died, while processes running side by side never share an id.
    """

    def __init__(self, base: str) -> None:
        self.base = base
        self._file: IO[bytes] | None = None

    def acquire(self) -> str:
        directory = Path(tempfile.gettempdir()) / "weatherpipe-mqtt"
        directory.mkdir(exist_ok=True)
        for slot in range(MAX_SLOTS):
            handle = (directory / f"{self.base}-{slot}.lock").open("ab")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            self._file = handle
            return f"{self.base}-{slot}"
        raise BusError(f"more than {MAX_SLOTS} MQTT consumers of {self.base!r} on this host")

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing drops the flock
            self._file = None
