"""NAB scoring (probation, sigmoid window credit, relative FP cost) and event-level metrics."""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Profile:
    """One NAB cost profile: the weights of a true positive, a missed window and a false alarm."""

    name: str
    tp: float
    fn: float
    fp: float


PROFILES: dict[str, Profile] = {
    "standard": Profile("standard", 1.0, 1.0, 0.11),
    "reward_low_FP_rate": Profile("reward_low_FP_rate", 1.0, 1.0, 0.22),
    "reward_low_FN_rate": Profile("reward_low_FN_rate", 1.0, 2.0, 0.11),
}

MAX_PROBATION_ROWS = 750


@dataclass(frozen=True, slots=True)
class FileScore:
    """A file's raw NAB score under one profile, with the counts behind it."""

    raw: float
    windows: int  # windows scored (ending after probation)
    detected: int  # windows credited with a true positive
    false_positives: int


@dataclass(frozen=True, slots=True)
class EventCounts:
    """Event-level tallies: windows caught, windows missed, onsets outside every window."""

    true_positives: int
    false_negatives: int
    false_positives: int

    def __add__(self, other: EventCounts) -> EventCounts:
        return EventCounts(
            self.true_positives + other.true_positives,
            self.false_negatives + other.false_negatives,
            self.false_positives + other.false_positives,
        )

    @property
    def precision(self) -> float:
        called = self.true_positives + self.false_positives
        return self.true_positives / called if called else 1.0

    @property
    def recall(self) -> float:
        events = self.true_positives + self.false_negatives
        return self.true_positives / events if events else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def sigmoid(y: float) -> float:
    """NAB's shape function A(y): +1 far before a window's end, 0 at it, -1 from 3 widths on."""
    if y > 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * y)) - 1.0


def probation_rows(n_rows: int) -> int:
    """How many leading rows of a file earn nothing and cost nothing."""
    return min(math.floor(0.15 * n_rows), MAX_PROBATION_ROWS)


def window_rows(
    timestamps: Sequence[float], windows: Iterable[tuple[float, float]]
) -> list[tuple[int, int]]:
    """Map [start, end] timestamp windows onto rows: the first row at or after start, the last
    at or before end (windows holding no row are dropped)."""
    rows = []
    for start, end in windows:
        first = bisect.bisect_left(timestamps, start)
        last = bisect.bisect_right(timestamps, end) - 1
        if first <= last:
            rows.append((first, last))
    return rows


def score_file(
    detections: Sequence[int], n_rows: int, windows: Sequence[tuple[int, int]], profile: Profile
) -> FileScore:
    """Raw NAB score of detection rows `detections` against row windows, per NAB's rules."""
    probation = probation_rows(n_rows)
    rows = sorted(i for i in set(detections) if i >= probation)
    ordered = sorted(windows)
    scored = [w for w in ordered if w[1] >= probation]
    raw = -profile.fn * len(scored)
    detected = 0
    for start, end in scored:
        credit = _window_credit(rows, start, end, profile)
        if credit is not None:
            raw += credit + profile.fn
            detected += 1
    false_positives = 0
    for i in rows:
        if not any(start <= i <= end for start, end in ordered):
            raw += _false_positive_cost(i, ordered, profile)
            false_positives += 1
    return FileScore(raw, len(scored), detected, false_positives)


def _window_credit(rows: Sequence[int], start: int, end: int, profile: Profile) -> float | None:
    """Credit of a window from its earliest detection, or None when nothing fell inside it."""
    k = bisect.bisect_left(rows, start)
    if k == len(rows) or rows[k] > end:
        return None
    width = end - start + 1
    return profile.tp * sigmoid(-(end - rows[k] + 1) / width) / sigmoid(-1.0)


def _false_positive_cost(i: int, windows: Sequence[tuple[int, int]], profile: Profile) -> float:
    """Cost of a detection outside windows, eased right after the last window that ended."""
    ended = [w for w in windows if w[1] < i]
    if not ended:
        return -profile.fp
    start, end = max(ended, key=lambda w: w[1])
    # A one-row window has no width to scale by; treat it as two rows wide.
    span = max(end - start, 1)
    return profile.fp * sigmoid((i - end) / span)


def normalised(raw_total: float, windows_total: int, profile: Profile) -> float:
    """Corpus score on NAB's 0 (never fires) to 100 (perfect) scale."""
    perfect = profile.tp * windows_total
    null = -profile.fn * windows_total
    if perfect == null:
        return 0.0
    return 100.0 * (raw_total - null) / (perfect - null)


def event_counts(
    windows: Iterable[tuple[float, float]], detections: Iterable[float]
) -> EventCounts:
    """Windows (start, end) against detection onset times: any onset inside a window catches it;
    onsets outside every window are false positives; extra onsets inside a window count for nothing.
    """
    spans = sorted(windows)
    caught = [False] * len(spans)
    false_positives = 0
    for t in detections:
        inside = [k for k, (start, end) in enumerate(spans) if start <= t <= end]
        for k in inside:
            caught[k] = True
        if not inside:
            false_positives += 1
    hits = sum(caught)
    return EventCounts(hits, len(spans) - hits, false_positives)


@dataclass(frozen=True, slots=True)
class Labelled:
    """A labelled window: its span in epoch seconds and its kind ("" when the labels have none)."""

    start: float
    end: float
    kind: str = ""


@dataclass(frozen=True, slots=True)
class MinuteEvents:
    """The independent event rule's tallies for one stream (or a sum of streams).

    A window is caught when an onset falls inside it; every distinct clock minute holding an
    onset outside all windows is one false alarm; normal time is the stream's span outside
    every window.
    """

    caught: dict[str, int]
    total: dict[str, int]
    false_alarms: int
    normal_seconds: float

    def __add__(self, other: MinuteEvents) -> MinuteEvents:
        kinds = set(self.total) | set(other.total)
        return MinuteEvents(
            {k: self.caught.get(k, 0) + other.caught.get(k, 0) for k in kinds},
            {k: self.total.get(k, 0) + other.total.get(k, 0) for k in kinds},
            self.false_alarms + other.false_alarms,
            self.normal_seconds + other.normal_seconds,
        )

    @property
    def counts(self) -> EventCounts:
        hits = sum(self.caught.values())
        return EventCounts(hits, sum(self.total.values()) - hits, self.false_alarms)

    @property
    def false_alarms_per_day(self) -> float:
        """False alarms per device-day of normal time."""
        days = self.normal_seconds / 86_400.0
        return self.false_alarms / days if days > 0 else 0.0


NO_EVENTS = MinuteEvents({}, {}, 0, 0.0)


def minute_events(
    windows: Sequence[Labelled], onsets: Sequence[float], first: float, last: float
) -> MinuteEvents:
    """Score onset times against labelled windows of a stream spanning [first, last]."""
    spans = sorted(windows, key=lambda w: w.start)
    starts = [w.start for w in spans]
    caught = [False] * len(spans)
    minutes: set[int] = set()
    for t in onsets:
        inside = False
        # Windows may overlap: look back over every window that starts at or before t.
        for k in range(bisect.bisect_right(starts, t) - 1, -1, -1):
            if spans[k].start <= t <= spans[k].end:
                caught[k] = inside = True
        if not inside:
            minutes.add(math.floor(t / 60.0))
    hits: dict[str, int] = {}
    total: dict[str, int] = {}
    for w, hit in zip(spans, caught, strict=True):
        total[w.kind] = total.get(w.kind, 0) + 1
        hits[w.kind] = hits.get(w.kind, 0) + hit
    return MinuteEvents(hits, total, len(minutes), _normal_seconds(spans, first, last))


def _normal_seconds(spans: Sequence[Labelled], first: float, last: float) -> float:
    """The stream's span outside the union of its windows."""
    covered, reach = 0.0, first
    for w in spans:
        a, b = max(w.start, reach), min(w.end, last)
        if b > a:
            covered += b - a
            reach = b
    return max(last - first - covered, 0.0)
