"""Runs a detector over a labeled corpus in NAB's layout and scores it (NAB and event-level)."""

from __future__ import annotations

import csv
import json
import multiprocessing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from weatherpipe.detect import create_detector
from weatherpipe.detect.base import Verdict
from weatherpipe.detect.scoring import (
    PROFILES,
    EventCounts,
    FileScore,
    event_counts,
    normalised,
    probation_rows,
    score_file,
    window_rows,
)

WORKERS = 2


@dataclass(frozen=True)
class FileResult:
    """One file's outcome: its size, NAB raw scores per profile and event tallies."""

    path: str
    rows: int
    scores: dict[str, FileScore]
    events: EventCounts


@dataclass(frozen=True)
class Report:
    """A corpus run: per-file results, normalised NAB scores per profile and event metrics."""

    detector: str
    files: list[FileResult]
    normalised: dict[str, float] = field(default_factory=dict)
    events: EventCounts = field(default_factory=lambda: EventCounts(0, 0, 0))


def parse_time(text: str) -> float:
    """Epoch seconds of a NAB timestamp ('2014-04-10 07:15:00[.000000]'), read as UTC."""
    moment = datetime.fromisoformat(text.strip())
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def read_series(path: Path) -> tuple[list[str], list[str]]:
    """The raw timestamp and value columns of a `timestamp,value` CSV, in file order."""
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        next(reader)
        rows = [row for row in reader if row]
    return [r[0] for r in rows], [r[1] for r in rows]


def evaluate_file(
    data_dir: Path,
    relative: str,
    windows: list[list[str]],
    detector_name: str,
    out_dir: Path | None,
) -> FileResult:
    """Run a fresh detector over one file, optionally write its output, and score it."""
    stamps, values = read_series(data_dir / relative)
    ts = [parse_time(s) for s in stamps]
    verdicts = create_detector(detector_name).process_many(ts, [float(v) for v in values])
    if out_dir is not None:
        _write_output(out_dir / relative, stamps, values, verdicts)
    detections = [i for i, v in enumerate(verdicts) if v.is_anomaly]
    spans = [(parse_time(a), parse_time(b)) for a, b in windows]
    rows = window_rows(ts, spans)
    scores = {name: score_file(detections, len(ts), rows, p) for name, p in PROFILES.items()}
    return FileResult(relative, len(ts), scores, _file_events(ts, detections, spans))


def _file_events(
    ts: list[float], detections: list[int], spans: list[tuple[float, float]]
) -> EventCounts:
    """Event tallies after probation, the same rows NAB scores."""
    probation = probation_rows(len(ts))
    if probation >= len(ts):
        return EventCounts(0, 0, 0)
    begin = ts[probation]
    onsets = [ts[i] for i in detections if i >= probation]
    return event_counts([s for s in spans if s[1] >= begin], onsets)


def _write_output(
    path: Path, stamps: list[str], values: list[str], verdicts: list[Verdict]
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["timestamp", "value", "score", "is_anomaly"])
        for stamp, value, verdict in zip(stamps, values, verdicts, strict=True):
            writer.writerow([stamp, value, f"{verdict.score:.6f}", int(verdict.is_anomaly)])


def evaluate_corpus(
    data_dir: Path, windows_path: Path, detector_name: str, out_dir: Path | None = None
) -> Report:
    """Score `detector_name` on every CSV under `data_dir` against the windows file."""
    create_detector(detector_name)  # fail fast on an unknown name, before forking workers
    labels: dict[str, list[list[str]]] = json.loads(windows_path.read_text())
    files = sorted(p.relative_to(data_dir).as_posix() for p in data_dir.rglob("*.csv"))
    jobs = [(data_dir, f, labels.get(f, []), detector_name, out_dir) for f in files]
    if len(jobs) > 1:
        with multiprocessing.get_context("spawn").Pool(min(WORKERS, len(jobs))) as pool:
            results = pool.starmap(evaluate_file, jobs, chunksize=1)
    else:
        results = [evaluate_file(*job) for job in jobs]
    return summarise(detector_name, results)


def summarise(detector_name: str, results: list[FileResult]) -> Report:
    """Corpus totals: normalised NAB score per profile and pooled event counts."""
    scores = {}
    for name, profile in PROFILES.items():
        raw = sum(r.scores[name].raw for r in results)
        windows = sum(r.scores[name].windows for r in results)
        scores[name] = normalised(raw, windows, profile)
    events = sum((r.events for r in results), EventCounts(0, 0, 0))
    return Report(detector_name, results, scores, events)


def format_report(report: Report, per_file: bool = False) -> str:
    """A plain-text summary: NAB scores, optionally a per-file table, then event metrics."""
    lines = [f"detector: {report.detector}   files: {len(report.files)}"]
    if per_file:
        lines += _per_file_table(report)
    std = report.normalised.get("standard", 0.0)
    low_fp = report.normalised.get("reward_low_FP_rate", 0.0)
    low_fn = report.normalised.get("reward_low_FN_rate", 0.0)
    lines.append(f"NAB score  standard {std:6.1f}   low FP {low_fp:6.1f}   low FN {low_fn:6.1f}")
    e = report.events
    lines.append(
        f"events     precision {e.precision:.3f}   recall {e.recall:.3f}   F1 {e.f1:.3f}"
        f"   (TP {e.true_positives}, FN {e.false_negatives}, FP {e.false_positives})"
    )
    return "\n".join(lines)


def _per_file_table(report: Report) -> list[str]:
    lines = [f"{'file':60} {'rows':>6} {'win':>4} {'hit':>4} {'FP':>4} {'raw std':>8}"]
    for r in report.files:
        s = r.scores["standard"]
        lines.append(
            f"{r.path:60} {r.rows:6d} {s.windows:4d} {s.detected:4d} "
            f"{s.false_positives:4d} {s.raw:8.3f}"
        )
    return lines
