"""A local file of messages the bus refused, sent again when it is back; survives restarts."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import orjson

log = logging.getLogger(__name__)

Item = tuple[bytes, Mapping[str, str] | None]


class Spool:
    """Append-only JSON lines on disk; emptied only after every line was published."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        # Counted from the file once, then kept up to date: the sensors ask every tick, and a
        # long outage makes the file long.
        self._count: int | None = None

    def __len__(self) -> int:
        if self._count is None:
            if not self.path.exists():
                self._count = 0
            else:
                with self.path.open("rb") as fh:
                    self._count = sum(1 for _ in fh)
        return self._count

    def append(self, items: Sequence[Item]) -> None:
        lines = b"".join(
            orjson.dumps({"d": data.decode("utf-8", "surrogateescape"), "a": dict(attrs or {})})
            + b"\n"
            for data, attrs in items
        )
        with self.path.open("ab") as fh:
            fh.write(lines)
            fh.flush()
            os.fsync(fh.fileno())
        if self._count is not None:
            self._count += len(items)

    def batches(self, size: int) -> Iterator[list[Item]]:
        """The spooled messages, oldest first, `size` at a time (a torn last line is skipped)."""
        if not self.path.exists():
            return
        batch: list[Item] = []
        with self.path.open("rb") as fh:
            for line in fh:
                try:
                    record = orjson.loads(line)
                except orjson.JSONDecodeError:
                    log.warning("skipping a torn line in spool %s", self.path)
                    continue
                batch.append((record["d"].encode("utf-8", "surrogateescape"), record["a"] or None))
                if len(batch) >= size:
                    yield batch
                    batch = []
        if batch:
            yield batch

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)
        self._count = 0
