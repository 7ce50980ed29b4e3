"""Dead letters for operators: a safe preview of their bytes, and replay to the bus after a fix."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from weatherpipe.bus.base import Bus
from weatherpipe.storage.deadletters import DeadLetters

log = logging.getLogger(__name__)
PREVIEW_BYTES = 80
REPLAY_PAGE = 1000
# Set on a replayed message: the dead letter it replays. Where a bus has no message ids (MQTT)
# the dead-letter key is made of attributes and bytes, and a replay still refused must not
# look like a redelivery of the first refusal.
REPLAY_OF = "weatherpipe-replay-of"


def preview(data: bytes, limit: int = PREVIEW_BYTES) -> str:
    """The first `limit` bytes as one printable line: invalid UTF-8 and control characters
    are escaped, so a hostile payload cannot move the cursor or ring the terminal."""
    text = data[:limit].decode("utf-8", "backslashreplace")
    safe = "".join(c if c.isprintable() else _escape(c) for c in text)
    if len(data) > limit:
        safe += f"… (+{len(data) - limit:,} bytes)"
    return safe


def _escape(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def listing(repo: DeadLetters, limit: int, pending_only: bool) -> list[dict[str, Any]]:
    """Rows for `weatherpipe dead-letters list`: id, time, reason, size, preview, replayed."""
    return [
        {
            "id": row["id"],
            "received_at": row["received_at"],
            "reason": row["reason"],
            "bytes": len(row["data"]),
            "preview": preview(row["data"]),
            "replayed_at": row["replayed_at"],
        }
        for row in repo.dead_letters(limit=limit, pending_only=pending_only)
    ]


@dataclass
class ReplayStats:
    replayed: int = 0
    missing: int = 0


def _pages(repo: DeadLetters, ids: Sequence[int] | None) -> Iterator[list[dict[str, Any]]]:
    if ids is not None:
        for first in range(0, len(ids), REPLAY_PAGE):
            chosen = ids[first : first + REPLAY_PAGE]
            yield repo.dead_letters(limit=len(chosen), pending_only=True, ids=chosen)
        return
    after: int | None = None
    while page := repo.dead_letters(limit=REPLAY_PAGE, pending_only=True, after_id=after):
        yield page
        after = page[-1]["id"]


async def replay(bus: Bus, repo: DeadLetters, ids: Sequence[int] | None = None) -> ReplayStats:
    """Publish pending dead letters again (all, or those in `ids`), then mark them replayed.

    Marked only after the broker accepted them: a crash in between replays them once more,
    which the (device_id, ts) key makes harmless. A message that is still bad comes back as a
    new dead letter with a fresh reason (and a REPLAY_OF attribute naming the old one).
    """
    stats = ReplayStats()
    for page in _pages(repo, ids):
        await bus.publish_many([(row["data"], _replayed(row)) for row in page])
        repo.mark_replayed([row["id"] for row in page])
        stats.replayed += len(page)
        log.info("replayed %d dead letters (up to id %d)", len(page), page[-1]["id"])
    if ids is not None:
        stats.missing = len(set(ids)) - stats.replayed
    return stats


def _replayed(row: dict[str, Any]) -> dict[str, str]:
    """The attributes a dead letter is replayed with: its own, and which dead letter it is."""
    return {**(row["attributes"] or {}), REPLAY_OF: str(row["id"])}
