"""The `alerts` stage: evaluate the rules every interval, drain the outbox, keep Alertmanager
told of what still fires; and `alerts test`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson

from weatherpipe.alerts.delivery import AttemptObserver, Deliverer
from weatherpipe.alerts.evaluate import Evaluator, alert_entry, firing_now, group_payload
from weatherpipe.alerts.receivers import Outcome, send
from weatherpipe.alerts.rules import AlertsConfig, LagRule, Receiver
from weatherpipe.errors import ConfigError, StorageUnavailable
from weatherpipe.lifecycle import pause
from weatherpipe.storage.alerts import (
    DELIVERED,
    FAILED,
    AlertStorage,
    Attempt,
    NewNotification,
)

log = logging.getLogger(__name__)
DELIVERY_POLL = 0.25  # seconds between looks at the outbox (a new incident wakes it at once)


class AlertsJob:
    """Evaluation and delivery of one alerts file over one database."""

    def __init__(
        self,
        storage: AlertStorage,
        config: AlertsConfig,
        detector: str = "default",
        observer: AttemptObserver | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.storage = storage
        self.config = config
        self.clock = clock
        self.evaluator = Evaluator(storage, config, detector, clock)
        self.deliverer = Deliverer(storage, config, observer, clock)
        self._wake = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        """Until `stop`: both loops, each waiting out database outages."""
        log.info(
            "alerts: %d rule(s) to %d receiver(s), evaluated every %g s",
            len(self.config.rules),
            len(self.config.receivers),
            self.config.interval_seconds,
        )
        await asyncio.gather(self._evaluate(stop), self._deliver(stop), self._resend(stop))

    async def _evaluate(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                changes = await asyncio.to_thread(self.evaluator.evaluate_once)
                if changes.notifications:
                    self._wake.set()
            except StorageUnavailable as exc:
                log.warning("database unavailable (%s); alert evaluation waits", exc)
            await pause(self.config.interval_seconds, stop)

    async def _deliver(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self._wake.clear()
            try:
                await self.deliverer.deliver_due()
            except StorageUnavailable as exc:
                log.warning("database unavailable (%s); alert delivery waits", exc)
            waits = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
            await asyncio.wait(waits, timeout=DELIVERY_POLL, return_when=asyncio.FIRST_COMPLETED)
            for waiting in waits:
                waiting.cancel()

    async def _resend(self, stop: asyncio.Event) -> None:
        """Alertmanager resolves an alert it is not told about again: re-post open incidents
        (Alertmanager deduplicates them; nothing new reaches a person)."""
        targets = [r for r in self.config.receivers if r.type == "alertmanager"]
        if not targets:
            return
        await pause(self.config.resend_seconds, stop)
        while not stop.is_set():
            try:
                await asyncio.to_thread(self.resend_once, targets)
            except StorageUnavailable as exc:
                log.warning("database unavailable (%s); Alertmanager re-post waits", exc)
            await pause(self.config.resend_seconds, stop)

    def resend_once(self, targets: list[Receiver]) -> None:
        now = self.clock()
        for receiver in targets:
            rules = [r for r in self.config.rules if receiver in self.config.receivers_of(r)]
            by_rule: dict[str, list[dict[str, Any]]] = {}
            for i in firing_now(self.storage, rules):
                entry = alert_entry(i["device_id"], {}, "firing", i["summary"], i["started_at"])
                by_rule.setdefault(i["rule"], []).append(entry)
            for rule in rules:
                if rule.name in by_rule:
                    outcome = send(receiver, group_payload(rule, "firing", by_rule[rule.name], now))
                    if not outcome.ok:
                        log.warning("re-post to %s: %s", receiver.name, outcome.describe())


def send_test(
    storage: AlertStorage, config: AlertsConfig, receiver_name: str | None = None
) -> list[tuple[Receiver, Outcome]]:
    """Send a test notification to one receiver or all, now, once; each is in the delivery log."""
    if receiver_name is not None and config.receiver(receiver_name) is None:
        known = ", ".join(r.name for r in config.receivers)
        raise ConfigError(f"alerts test: no receiver named {receiver_name!r} (there are: {known})")
    now = datetime.now(UTC)
    rule = LagRule(name="weatherpipe-test", type="lag", stage="ingest", seconds=1, severity="none")
    entry = alert_entry("", {}, "test", "a test notification from `weatherpipe alerts test`", now)
    payload = group_payload(rule, "test", [entry], now)
    payload["rule_type"] = "test"
    results = []
    for receiver in config.receivers:
        if receiver_name is not None and receiver.name != receiver_name:
            continue
        body = orjson.dumps(payload).decode()
        note_id = storage.add_notification(
            NewNotification(rule.name, receiver.name, "test", body, now)
        )
        outcome = send(receiver, payload)
        at = datetime.now(UTC)
        storage.record_attempt(
            Attempt(
                note_id,
                1,
                at,
                outcome.ok,
                outcome.http_status,
                outcome.error,
                outcome.seconds,
                DELIVERED if outcome.ok else FAILED,
                at,
            )
        )
        results.append((receiver, outcome))
    return results
