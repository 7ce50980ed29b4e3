"""Rules become incidents: what fires now, against what is open, gives what to open, resolve and
notify (grouped per rule and receiver), written in one transaction."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from weatherpipe.alerts.rules import (
    SEVERITIES,
    AlertsConfig,
    AnomalyRule,
    LagRule,
    Rule,
    SilenceRule,
    ThresholdRule,
)
from weatherpipe.storage.alerts import AlertStorage, NewIncident, NewNotification

log = logging.getLogger(__name__)
FLEET = ""  # the device of a fleet-wide incident


@dataclass(frozen=True, slots=True)
class Firing:
    """A rule's condition holding for one device (or the fleet)."""

    device_id: str
    summary: str
    since: datetime  # when the condition began, as far as the data says


@dataclass
class Facts:
    """What the rules look at, read once per evaluation and only as far as some rule needs."""

    storage: AlertStorage
    detector: str
    now: datetime
    flags_since: datetime | None = None  # the widest anomaly window's start
    _cache: dict[Any, Any] = field(default_factory=dict)

    def cached(self, key: Any, read: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = read()
        return self._cache[key]


@dataclass(frozen=True)
class Changes:
    opened: list[NewIncident]
    resolved: list[tuple[int, datetime]]
    notifications: list[NewNotification]


def stamp(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def anomaly_firing(rule: AnomalyRule, facts: Facts) -> dict[str, Firing]:
    """Devices with a matching flag in the rule's window: the newest one in the summary."""
    window = timedelta(minutes=rule.clear_minutes)
    since = facts.now - window
    # One read serves every anomaly rule: the widest window of them.
    flags = facts.cached("flags", lambda: facts.storage.flags_since(facts.flags_since or since))
    floor = SEVERITIES.index(rule.min_severity)
    found: dict[str, list[dict[str, Any]]] = {}
    for f in flags:
        if f["last_ts"] < since or (rule.kinds and f["kind"] not in rule.kinds):
            continue
        rank = SEVERITIES.index(f["severity"]) if f["severity"] in SEVERITIES else 0
        if rank < floor:
            continue
        found.setdefault(f["device_id"], []).append(f)
    out = {}
    for device, groups in found.items():
        newest = max(groups, key=lambda g: g["last_ts"])
        count = sum(g["count"] for g in groups)
        score = "" if newest["score"] is None else f", score {newest['score']:.2f}"
        out[device] = Firing(
            device,
            f"{newest['kind'] or 'anomaly'} anomaly ({newest['severity'] or 'no severity'})"
            f"{score} at {stamp(newest['last_ts'])}; {count} flagged in the last "
            f"{_minutes(window.total_seconds())}",
            min(g["first_ts"] for g in groups),
        )
    return out


def threshold_firing(rule: ThresholdRule, facts: Facts) -> dict[str, Firing]:
    side, value = ("above", rule.above) if rule.above is not None else ("below", rule.below)
    assert value is not None

    def beyond(t: float) -> bool:
        return t > value if side == "above" else t < value

    out = {}
    if rule.for_minutes == 0:
        for device, (ts, t) in facts.storage.latest_beyond(rule.above, rule.below).items():
            out[device] = Firing(device, f"{t:.2f} °C is {side} {value:g} °C", ts)
        return out
    since = facts.now - timedelta(minutes=rule.for_minutes)
    windows = facts.cached(
        ("window", rule.for_minutes), lambda: facts.storage.temperature_windows(since)
    )
    for device, (low, high, n, first_seen) in windows.items():
        if first_seen is None or first_seen > since:
            continue  # not seen for the whole span yet
        if beyond(low if side == "above" else high):
            shown = low if side == "above" else high
            out[device] = Firing(
                device,
                f"{n} readings {side} {value:g} °C for {rule.for_minutes:g} min "
                f"({'lowest' if side == 'above' else 'highest'} {shown:.2f} °C)",
                since,
            )
    return out


def silence_firing(rule: SilenceRule, facts: Facts) -> dict[str, Firing]:
    quiet = facts.now - timedelta(minutes=rule.minutes)
    out = {}
    for device, last in facts.storage.silent_devices(quiet).items():
        silent = (facts.now - last).total_seconds()
        out[device] = Firing(
            device, f"silent for {_minutes(silent)} (last reading {stamp(last)})", last
        )
    return out


def lag_firing(rule: LagRule, facts: Facts) -> dict[str, Firing]:
    if rule.stage == "ingest":
        lag = facts.cached("ingest_lag", facts.storage.ingest_lag)
        if lag is not None and lag > rule.seconds:
            text = f"ingest lags {lag:.1f} s (newest reading stored {lag:.1f} s after its time)"
            return {FLEET: Firing(FLEET, text, facts.now)}
        return {}
    lags = facts.cached("detection_lags", lambda: facts.storage.detection_lags(facts.detector))
    behind = {d: s for d, s in lags.items() if s > rule.seconds}
    if not behind:
        return {}
    worst = max(behind, key=behind.__getitem__)
    text = (
        f"detection lags {behind[worst]:.1f} s on {worst} "
        f"({len(behind)} device{'s' * (len(behind) != 1)} over {rule.seconds:g} s)"
    )
    return {FLEET: Firing(FLEET, text, facts.now)}


def firing(rule: Rule, facts: Facts) -> dict[str, Firing]:
    """What `rule` fires for now, limited to its devices."""
    if isinstance(rule, AnomalyRule):
        found = anomaly_firing(rule, facts)
    elif isinstance(rule, ThresholdRule):
        found = threshold_firing(rule, facts)
    elif isinstance(rule, SilenceRule):
        found = silence_firing(rule, facts)
    else:
        found = lag_firing(rule, facts)
    if rule.devices:
        found = {d: f for d, f in found.items() if d in rule.devices or d == FLEET}
    return found


def group_payload(
    rule: Rule, status: str, alerts: Sequence[Mapping[str, Any]], now: datetime
) -> dict[str, Any]:
    """The receiver-neutral notification of several incidents of one rule."""
    count = len(alerts)
    what = "the fleet" if alerts and alerts[0]["device_id"] == FLEET else f"{count} device"
    what += "s" if count != 1 and what != "the fleet" else ""
    return {
        "version": 1,
        "source": "weatherpipe",
        "status": status,
        "rule": rule.name,
        "rule_type": rule.type,
        "severity": rule.severity,
        "title": f"[{status.upper()}] {rule.name}: {what}",
        "sent_at": stamp(now),
        "alerts": list(alerts),
    }


def alert_entry(
    device_id: str,
    names: Mapping[str, str | None],
    status: str,
    summary: str,
    started_at: datetime,
    since: datetime | None = None,
    resolved_at: datetime | None = None,
) -> dict[str, Any]:
    return {
        "device_id": device_id,
        "device_name": names.get(device_id),
        "status": status,
        "summary": summary,
        "since": stamp(since or started_at),
        "started_at": stamp(started_at),
        "resolved_at": None if resolved_at is None else stamp(resolved_at),
    }


class Evaluator:
    """Evaluates every rule against the database and records what changed."""

    def __init__(
        self,
        storage: AlertStorage,
        config: AlertsConfig,
        detector: str = "default",
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.storage = storage
        self.config = config
        self.detector = detector
        self.clock = clock

    def changes(self) -> Changes:
        """What to open, resolve and send, from the database's facts and open incidents."""
        now = self.clock()
        facts = Facts(self.storage, self.detector, now)
        windows = [r.clear_minutes for r in self.config.rules if isinstance(r, AnomalyRule)]
        if windows:
            facts.flags_since = now - timedelta(minutes=max(windows))
        open_now = {(i["rule"], i["device_id"]): i for i in self.storage.open_incidents()}
        changed = []
        for rule in self.config.rules:
            fire = firing(rule, facts)
            new = [f for d, f in sorted(fire.items()) if (rule.name, d) not in open_now]
            gone = [i for (r, d), i in sorted(open_now.items()) if r == rule.name and d not in fire]
            changed.append((rule, new, gone))
        opened = [
            NewIncident(r.name, f.device_id, now, f.summary) for r, new, _ in changed for f in new
        ]
        resolved = [(i["id"], now) for _, _, gone in changed for i in gone]
        rules = {r.name for r in self.config.rules}
        # A rule taken out of the file: its incidents close without a notification.
        resolved += [(i["id"], now) for (r, _), i in open_now.items() if r not in rules]
        return Changes(opened, resolved, self._notifications(changed, now))

    def _notifications(
        self, changed: list[tuple[Rule, list[Firing], list[dict[str, Any]]]], now: datetime
    ) -> list[NewNotification]:
        """One notification per rule, status and receiver, naming the devices involved."""
        ids = {f.device_id for _, new, _ in changed for f in new}
        ids |= {i["device_id"] for _, _, gone in changed for i in gone}
        ids.discard(FLEET)
        names = self.storage.device_names(sorted(ids)) if ids else {}
        notes: list[NewNotification] = []
        for rule, new, gone in changed:
            fired = [
                alert_entry(f.device_id, names, "firing", f.summary, now, f.since) for f in new
            ]
            cleared = [
                alert_entry(
                    i["device_id"],
                    names,
                    "resolved",
                    i["summary"],
                    i["started_at"],
                    resolved_at=now,
                )
                for i in gone
            ]
            for status, alerts in (("firing", fired), ("resolved", cleared)):
                if alerts:
                    notes += self._notify(rule, status, alerts, now)
        return notes

    def _notify(
        self, rule: Rule, status: str, alerts: list[dict[str, Any]], now: datetime
    ) -> list[NewNotification]:
        payload = orjson.dumps(group_payload(rule, status, alerts, now)).decode()
        return [
            NewNotification(rule.name, r.name, status, payload, now)
            for r in self.config.receivers_of(rule)
        ]

    def evaluate_once(self) -> Changes:
        changes = self.changes()
        if changes.opened or changes.resolved:
            if not self.storage.record_incidents(
                changes.opened, changes.resolved, changes.notifications
            ):
                log.warning("alert incidents were opened by another process; evaluating again")
                return Changes([], [], [])
            for i in changes.opened:
                log.info("alert %s fired for %s: %s", i.rule, i.device_id or "the fleet", i.summary)
            if changes.resolved:
                log.info("%d alert incident(s) resolved", len(changes.resolved))
        return changes


def firing_now(storage: AlertStorage, rules: Iterable[Rule]) -> list[dict[str, Any]]:
    """The open incidents of these rules (for re-posting to Alertmanager)."""
    names = {r.name for r in rules}
    return [i for i in storage.open_incidents() if i["rule"] in names]
