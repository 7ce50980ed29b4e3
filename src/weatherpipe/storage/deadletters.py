"""Dead letters: written with their batch by ingest, listed and marked replayed here."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson
from sqlalchemy import Connection, func, select, update

from weatherpipe.storage.database import Store
from weatherpipe.storage.dialects.base import Dialect
from weatherpipe.storage.rows import DeadLetter, naive_utc
from weatherpipe.storage.tables import dead_letters


class DeadLetters(Protocol):
    """What `weatherpipe dead-letters` and replay need."""

    def dead_letters(
        self,
        limit: int = 100,
        pending_only: bool = True,
        after_id: int | None = None,
        ids: Sequence[int] | None = None,
    ) -> list[dict[str, Any]]: ...

    def pending_dead_letters(self) -> int: ...

    def mark_replayed(self, ids: Sequence[int]) -> None: ...


def add_dead_letters(
    conn: Connection, dialect: Dialect, dead: Sequence[DeadLetter], received: datetime
) -> None:
    """Store dead letters in `conn`'s transaction (ingest's, beside the batch's readings);
    one whose key is stored already (a redelivery) is skipped."""
    if dead:
        conn.execute(dialect.dead_letter_insert(), [_dead_row(d, received) for d in dead])


class DeadLetterStore(Store):
    def dead_letters(
        self,
        limit: int = 100,
        pending_only: bool = True,
        after_id: int | None = None,
        ids: Sequence[int] | None = None,
    ) -> list[dict[str, Any]]:
        """Dead letters in id order; page on with `after_id`, or pick some by `ids`."""
        query = select(dead_letters).order_by(dead_letters.c.id).limit(limit)
        if pending_only:
            query = query.where(dead_letters.c.replayed_at.is_(None))
        if after_id is not None:
            query = query.where(dead_letters.c.id > after_id)
        if ids is not None:
            query = query.where(dead_letters.c.id.in_(list(ids)))
        rows = self.db.rows(query)[0]
        for row in rows:
            row["attributes"] = orjson.loads(row["attributes"]) if row["attributes"] else {}
        return rows

    def pending_dead_letters(self) -> int:
        """How many dead letters were not replayed yet."""
        query = (
            select(func.count())
            .select_from(dead_letters)
            .where(dead_letters.c.replayed_at.is_(None))
        )
        return int(self.db.run(lambda conn: conn.execute(query).scalar()) or 0)

    def mark_replayed(self, ids: Sequence[int]) -> None:
        now = naive_utc(datetime.now(UTC))
        self.db.run(
            lambda conn: conn.execute(
                update(dead_letters).where(dead_letters.c.id.in_(list(ids))).values(replayed_at=now)
            )
        )


def _dead_row(d: DeadLetter, received: datetime) -> dict[str, Any]:
    attributes = orjson.dumps(dict(d.attributes)).decode() if d.attributes else None
    return {
        "data": d.data,
        "attributes": attributes,
        "reason": d.reason[:500],
        "received_at": received,
        "message_key": d.key,
    }
