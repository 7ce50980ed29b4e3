"""The outbox drained: each due notification claimed, sent, logged, and retried with
exponential backoff until delivered or given up (state in the database: a restart goes on)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import orjson

from weatherpipe.alerts.receivers import Outcome, send
from weatherpipe.alerts.rules import AlertsConfig, Receiver
from weatherpipe.storage.alerts import DELIVERED, FAILED, PENDING, AlertStorage, Attempt

log = logging.getLogger(__name__)
BATCH = 50  # notifications sent at once, at most
CLAIM_MARGIN = 30.0  # seconds a claim outlives the receiver's timeout


class AttemptObserver(Protocol):
    def on_alert_attempt(self, receiver: str, outcome: str, queued_seconds: float) -> None: ...


def backoff(config: AlertsConfig, attempt: int) -> float:
    """Seconds before the next try after `attempt` failed tries: 2, 4, 8, ... up to the cap."""
    return float(min(config.first_retry_seconds * 2 ** (attempt - 1), config.max_retry_seconds))


class Deliverer:
    """Sends due notifications; one instance per process (claims keep several apart)."""

    def __init__(
        self,
        storage: AlertStorage,
        config: AlertsConfig,
        observer: AttemptObserver | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        sender: Callable[[Receiver, dict[str, Any]], Outcome] = send,
    ) -> None:
        self.storage = storage
        self.config = config
        self.observer = observer
        self.clock = clock
        self.sender = sender

    async def deliver_due(self) -> int:
        """Try every due notification once; how many were tried."""
        now = self.clock()
        due = await asyncio.to_thread(self.storage.due_notifications, now, BATCH)
        mine = []
        for note in due:
            receiver = self.config.receiver(note["receiver"])
            timeout = receiver.timeout_seconds if receiver else 0.0
            until = now + timedelta(seconds=timeout + CLAIM_MARGIN)
            if await asyncio.to_thread(self.storage.claim_notification, note["id"], now, until):
                mine.append((note, receiver))
        await asyncio.gather(*(self._attempt(note, receiver) for note, receiver in mine))
        return len(mine)

    async def _attempt(self, note: dict[str, Any], receiver: Receiver | None) -> None:
        if receiver is None:
            outcome = Outcome(False, None, "no such receiver in the alerts file", 0.0, False)
        else:
            payload = orjson.loads(note["payload"])
            outcome = await asyncio.to_thread(self.sender, receiver, payload)
        attempt = self.next_step(note["id"], note["attempts"] + 1, outcome)
        await asyncio.to_thread(self.storage.record_attempt, attempt)
        label = {DELIVERED: "delivered", FAILED: "failed", PENDING: "retry"}[attempt.state]
        if self.observer is not None:
            queued = (attempt.at - note["created_at"]).total_seconds()
            self.observer.on_alert_attempt(note["receiver"], label, queued)
        _log(note, attempt, outcome)

    def next_step(self, note_id: int, attempt: int, outcome: Outcome) -> Attempt:
        """The attempt as logged: delivered, given up, or pending with the next try's time."""
        at = self.clock()
        if outcome.ok:
            state, next_at = DELIVERED, at
        elif not outcome.retryable or attempt >= self.config.max_attempts:
            state, next_at = FAILED, at
        else:
            state, next_at = PENDING, at + timedelta(seconds=backoff(self.config, attempt))
        return Attempt(
            note_id,
            attempt,
            at,
            outcome.ok,
            outcome.http_status,
            outcome.error,
            outcome.seconds,
            state,
            next_at,
        )


def _log(note: dict[str, Any], attempt: Attempt, outcome: Outcome) -> None:
    what = f"alert {note['rule']} ({note['status']}) to {note['receiver']}"
    if attempt.state == DELIVERED:
        log.info("%s delivered after %d attempt(s)", what, attempt.attempt)
    elif attempt.state == FAILED:
        log.error("%s given up after %d attempt(s): %s", what, attempt.attempt, outcome.describe())
    else:
        wait = (attempt.next_attempt_at - attempt.at).total_seconds()
        log.warning(
            "%s: attempt %d %s; next in %.0f s", what, attempt.attempt, outcome.describe(), wait
        )
