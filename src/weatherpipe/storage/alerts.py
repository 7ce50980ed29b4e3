"""What the alerts stage writes and reads back: incidents, the delivery outbox and the log of
attempts (the facts its rules look at are in storage/rulefacts.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Connection, bindparam, insert, or_, select, update

from weatherpipe.errors import StorageRefused
from weatherpipe.storage.rows import aware, aware_or_none, naive_utc
from weatherpipe.storage.rulefacts import RuleFacts, RuleFactStore
from weatherpipe.storage.tables import (
    alert_attempts,
    alert_incidents,
    alert_notifications,
)

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"


@dataclass(frozen=True, slots=True)
class NewIncident:
    rule: str
    device_id: str  # "" for a fleet-wide rule
    started_at: datetime
    summary: str


@dataclass(frozen=True, slots=True)
class NewNotification:
    rule: str
    receiver: str
    status: str  # firing, resolved or test
    payload: str  # JSON
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Attempt:
    """One try at delivering a notification, and what the notification becomes after it."""

    notification_id: int
    attempt: int
    at: datetime
    ok: bool
    http_status: int | None
    error: str | None
    seconds: float
    state: str  # pending (retry at next_attempt_at), delivered or failed
    next_attempt_at: datetime


def open_key(rule: str, device_id: str) -> str:
    return f"{rule}|{device_id}"


class AlertStorage(RuleFacts, Protocol):
    """What the alerts stage needs of the database: the facts rules look at, and incidents,
    the delivery outbox and the log of attempts."""

    def open_incidents(self) -> list[dict[str, Any]]: ...

    def record_incidents(
        self,
        opened: Sequence[NewIncident],
        resolved: Sequence[tuple[int, datetime]],
        notifications: Sequence[NewNotification],
    ) -> bool: ...

    def add_notification(self, note: NewNotification) -> int: ...

    def due_notifications(self, now: datetime, limit: int) -> list[dict[str, Any]]: ...

    def claim_notification(self, notification_id: int, now: datetime, until: datetime) -> bool: ...

    def record_attempt(self, attempt: Attempt) -> None: ...

    def delivery_log(self, limit: int) -> list[dict[str, Any]]: ...


class AlertStore(RuleFactStore):
    # -- incidents -------------------------------------------------------------------------------

    def open_incidents(self) -> list[dict[str, Any]]:
        query = select(
            alert_incidents.c.id,
            alert_incidents.c.rule,
            alert_incidents.c.device_id,
            alert_incidents.c.started_at,
            alert_incidents.c.summary,
        ).where(alert_incidents.c.open_key.is_not(None))
        return [{**row, "started_at": aware(row["started_at"])} for row in self.db.rows(query)[0]]

    def incidents(self, limit: int = 100) -> list[dict[str, Any]]:
        """The newest incidents, open or resolved."""
        query = (
            select(alert_incidents)
            .order_by(alert_incidents.c.started_at.desc(), alert_incidents.c.id.desc())
            .limit(limit)
        )
        return [
            {
                "id": row["id"],
                "rule": row["rule"],
                "device_id": row["device_id"],
                "started_at": aware(row["started_at"]),
                "resolved_at": aware_or_none(row["resolved_at"]),
                "summary": row["summary"],
            }
            for row in self.db.rows(query)[0]
        ]

    def record_incidents(
        self,
        opened: Sequence[NewIncident],
        resolved: Sequence[tuple[int, datetime]],
        notifications: Sequence[NewNotification],
    ) -> bool:
        """Open and resolve incidents and queue their notifications, in one transaction: an
        incident is never opened without its notification, nor notified twice. False (and
        nothing written) when another process opened one of them first."""

        def work(conn: Connection) -> None:
            if opened:
                conn.execute(
                    insert(alert_incidents),
                    [
                        {
                            "rule": i.rule,
                            "device_id": i.device_id,
                            "open_key": open_key(i.rule, i.device_id),
                            "started_at": naive_utc(i.started_at),
                            "summary": i.summary[:500],
                        }
                        for i in opened
                    ],
                )
            if resolved:
                conn.execute(
                    update(alert_incidents)
                    .where(alert_incidents.c.id == bindparam("iid"))
                    .values(open_key=None, resolved_at=bindparam("at")),
                    [{"iid": i, "at": naive_utc(at)} for i, at in resolved],
                )
            if notifications:
                conn.execute(insert(alert_notifications), [_note_row(n) for n in notifications])

        try:
            self.db.run(work)
        except StorageRefused:  # the open_key is taken: that incident is open already
            return False
        return True

    # -- the outbox ------------------------------------------------------------------------------

    def add_notification(self, note: NewNotification) -> int:
        """Queue one notification; its id."""
        query = insert(alert_notifications).values(_note_row(note))

        def work(conn: Connection) -> int:
            key = conn.execute(query).inserted_primary_key
            assert key is not None
            return int(key[0])

        return self.db.run(work)

    def due_notifications(self, now: datetime, limit: int) -> list[dict[str, Any]]:
        """Pending notifications whose next attempt is due and that no sender holds, oldest
        first."""
        n = alert_notifications.c
        at = naive_utc(now)
        query = (
            select(n.id, n.rule, n.receiver, n.status, n.payload, n.attempts, n.created_at)
            .where(
                n.state == PENDING,
                n.next_attempt_at <= at,
                or_(n.claimed_until.is_(None), n.claimed_until < at),
            )
            .order_by(n.next_attempt_at, n.id)
            .limit(limit)
        )
        return [
            {**row, "created_at": aware(row["created_at"]), "payload": _text(row["payload"])}
            for row in self.db.rows(query)[0]
        ]

    def claim_notification(self, notification_id: int, now: datetime, until: datetime) -> bool:
        """Hold a pending notification until `until`; False if another sender holds it or it
        is no longer pending (so two alerts processes never send the same attempt)."""
        n = alert_notifications.c
        at = naive_utc(now)
        query = (
            update(alert_notifications)
            .where(
                n.id == notification_id,
                n.state == PENDING,
                or_(n.claimed_until.is_(None), n.claimed_until < at),
            )
            .values(claimed_until=naive_utc(until))
        )
        return bool(self.db.run(lambda conn: conn.execute(query).rowcount))

    def record_attempt(self, attempt: Attempt) -> None:
        """Log an attempt and move its notification on, in one transaction."""
        row = {
            "notification_id": attempt.notification_id,
            "attempt": attempt.attempt,
            "at": naive_utc(attempt.at),
            "ok": attempt.ok,
            "http_status": attempt.http_status,
            "error": None if attempt.error is None else attempt.error[:500],
            "seconds": attempt.seconds,
        }
        change = (
            update(alert_notifications)
            .where(alert_notifications.c.id == attempt.notification_id)
            .values(
                state=attempt.state,
                attempts=attempt.attempt,
                next_attempt_at=naive_utc(attempt.next_attempt_at),
                claimed_until=None,
                delivered_at=naive_utc(attempt.at) if attempt.ok else None,
                last_error=row["error"],
            )
        )

        def work(conn: Connection) -> None:
            conn.execute(insert(alert_attempts).values(row))
            conn.execute(change)

        self.db.run(work)

    def delivery_log(self, limit: int = 50) -> list[dict[str, Any]]:
        """The newest notifications, each with its attempts (oldest first)."""
        n = alert_notifications.c
        notes = (
            select(
                n.id,
                n.rule,
                n.receiver,
                n.status,
                n.created_at,
                n.state,
                n.attempts,
                n.next_attempt_at,
                n.delivered_at,
                n.last_error,
            )
            .order_by(n.id.desc())
            .limit(limit)
        )
        rows = self.db.rows(notes)[0]
        ids = [row["id"] for row in rows]
        tries = (
            select(alert_attempts)
            .where(alert_attempts.c.notification_id.in_(ids))
            .order_by(alert_attempts.c.id)
        )
        by_note: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
        for a in self.db.rows(tries)[0] if ids else []:
            by_note[a["notification_id"]].append(
                {
                    "attempt": a["attempt"],
                    "at": aware(a["at"]),
                    "ok": bool(a["ok"]),
                    "http_status": a["http_status"],
                    "error": a["error"],
                    "seconds": float(a["seconds"]),
                }
            )
        stamps = ("created_at", "next_attempt_at", "delivered_at")
        return [
            {**row, **{k: aware_or_none(row[k]) for k in stamps}, "attempt_log": by_note[row["id"]]}
            for row in rows
        ]


def _note_row(note: NewNotification) -> dict[str, Any]:
    at = naive_utc(note.created_at)
    return {
        "rule": note.rule,
        "receiver": note.receiver,
        "status": note.status,
        "payload": note.payload,
        "created_at": at,
        "state": PENDING,
        "attempts": 0,
        "next_attempt_at": at,
    }


def _text(value: str | bytes) -> str:
    return value if isinstance(value, str) else value.decode()
