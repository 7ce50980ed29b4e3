"""Scores a pipeline run's flags against the anomalies the simulator injected (its ground truth)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from weatherpipe.detect.scoring import EventCounts, event_counts
from weatherpipe.storage.repository import Repository

# A detector may answer a little after an anomaly ends (a drift snapping back, a dip's tail).
GRACE_SECONDS = 30.0


@dataclass
class LiveScore:
    """Event-level counts over every device, and the windows caught or missed per anomaly kind."""

    overall: EventCounts = field(default_factory=lambda: EventCounts(0, 0, 0))
    caught: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    missed: dict[str, int] = field(default_factory=lambda: defaultdict(int))


def score_run(
    repo: Repository, detector: str | None = None, grace: float = GRACE_SECONDS
) -> LiveScore:
    """Precision, recall and F1 of the flags in the database against the injected anomalies.

    Only what the detector has already seen is scored: windows that end (plus the grace) after
    a device's detector position, and flags after it, wait for a later call.
    """
    positions = {
        row["device_id"]: row["last_ts"].timestamp()
        for row in repo.detector_positions()
        if detector is None or row["detector"] == detector
    }
    windows: dict[str, list[tuple[str, float, float]]] = defaultdict(list)
    for row in repo.injected():
        end = row["end_ts"].timestamp() + grace
        if end <= positions.get(row["device_id"], float("-inf")):
            windows[row["device_id"]].append((row["kind"], row["start_ts"].timestamp(), end))
    onsets: dict[str, list[float]] = defaultdict(list)
    for device_id, ts in repo.flagged(detector):
        onsets[device_id].append(ts.timestamp())
    score = LiveScore()
    for device_id, position in positions.items():
        spans = windows[device_id]
        score.overall += event_counts(
            [(a, b) for _, a, b in spans], [t for t in onsets[device_id] if t <= position]
        )
        for kind, a, b in spans:
            hit = any(a <= t <= b for t in onsets[device_id])
            (score.caught if hit else score.missed)[kind] += 1
    return score


def format_score(score: LiveScore) -> str:
    c = score.overall
    lines = [
        f"precision {c.precision:.3f}  recall {c.recall:.3f}  F1 {c.f1:.3f}  "
        f"(caught {c.true_positives}, missed {c.false_negatives}, false alarms {c.false_positives})"
    ]
    for kind in sorted(set(score.caught) | set(score.missed)):
        lines.append(f"  {kind:12} caught {score.caught[kind]:4}  missed {score.missed[kind]:4}")
    return "\n".join(lines)
