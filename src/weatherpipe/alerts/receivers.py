"""One notification rendered for its receiver (JSON webhook, Slack, Alertmanager) and sent."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from weatherpipe.alerts.rules import Receiver

# 4xx answers other than these mean the receiver refuses the request itself: retrying is futile.
RETRYABLE_4XX = frozenset({408, 425, 429})
ALERTMANAGER_PATH = "/api/v2/alerts"
# A test notification shows in Alertmanager this long.
TEST_SECONDS = 300


@dataclass(frozen=True, slots=True)
class Outcome:
    ok: bool
    http_status: int | None
    error: str | None
    seconds: float
    retryable: bool = True

    def describe(self) -> str:
        status = f"HTTP {self.http_status}" if self.http_status is not None else "no answer"
        took = f"{self.seconds * 1000:.0f} ms"
        if self.ok:
            return f"delivered ({status} in {took})"
        return f"failed ({status} after {took}: {self.error})"


def render(receiver: Receiver, payload: dict[str, Any]) -> tuple[str, bytes]:
    """The URL and JSON body this receiver takes for `payload` (see evaluate.group_payload)."""
    if receiver.type == "slack":
        return receiver.url, orjson.dumps({"text": slack_text(payload)})
    if receiver.type == "alertmanager":
        url = receiver.url.rstrip("/") + ALERTMANAGER_PATH
        return url, orjson.dumps(alertmanager_alerts(payload))
    return receiver.url, orjson.dumps({**payload, "receiver": receiver.name})


def slack_text(payload: dict[str, Any]) -> str:
    lines = [f"*{payload['title']}* ({payload['severity']})"]
    for a in payload["alerts"]:
        who = a["device_name"] or a["device_id"] or "fleet"
        lines.append(f"• {who}: {a['summary']}")
    return "\n".join(lines)


def alert_labels(payload: dict[str, Any], alert: dict[str, Any]) -> dict[str, str]:
    """Alertmanager's identity of an incident: the same labels when it fires and resolves."""
    labels = {
        "alertname": payload["rule"],
        "severity": payload["severity"],
        "source": "weatherpipe",
        "rule_type": payload["rule_type"],
    }
    if alert["device_id"]:
        labels["device_id"] = alert["device_id"]
    return labels


def alertmanager_alerts(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """Alertmanager API v2 alerts; a resolved incident carries its endsAt."""
    out = []
    for a in payload["alerts"]:
        annotations = {"summary": a["summary"], "title": payload["title"]}
        if a["device_name"]:
            annotations["device_name"] = a["device_name"]
        alert = {
            "labels": alert_labels(payload, a),
            "annotations": annotations,
            "startsAt": a["started_at"],
        }
        if a["resolved_at"]:
            alert["endsAt"] = a["resolved_at"]
        elif payload["status"] == "test":
            ends = datetime.fromisoformat(a["started_at"]) + timedelta(seconds=TEST_SECONDS)
            alert["endsAt"] = ends.astimezone(UTC).isoformat(timespec="milliseconds")
        out.append(alert)
    return out


def send(receiver: Receiver, payload: dict[str, Any]) -> Outcome:
    """POST the rendered notification once (blocking); what happened."""
    url, body = render(receiver, payload)
    headers = {"Content-Type": "application/json", "User-Agent": "weatherpipe-alerts"}
    request = urllib.request.Request(
        url, data=body, headers={**headers, **receiver.headers}, method="POST"
    )
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=receiver.timeout_seconds) as answer:
            answer.read(4096)
            return Outcome(True, answer.status, None, time.perf_counter() - started)
    except urllib.error.HTTPError as exc:
        text = exc.read(300).decode("utf-8", "replace").strip()
        retry = exc.code >= 500 or exc.code in RETRYABLE_4XX
        error = f"{exc.reason}: {' '.join(text.split())}" if text else str(exc.reason)
        return Outcome(False, exc.code, error, time.perf_counter() - started, retry)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = str(getattr(exc, "reason", exc)) or type(exc).__name__
        return Outcome(False, None, reason, time.perf_counter() - started)
