"""Runs a detector over a labeled corpus in NAB's layout and scores it (NAB and event-level)."""

from __future__ import annotations

import csv
import json
import multiprocessing
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from weatherpipe.detect import create_detector
from weatherpipe.detect.base import Verdict
from weatherpipe.detect.scoring import (
    NO_EVENTS,
    PROFILES,
    FileScore,
    Labelled,
    MinuteEvents,
    minute_events,
    normalised,
    score_file,
    window_rows,
)
from weatherpipe.errors import ConfigError

WORKERS = 2


@dataclass(frozen=True)
class FileResult:
    """One file's outcome: its size, NAB raw scores per profile and event tallies."""

    path: str
    rows: int
    scores: dict[str, FileScore]
    events: MinuteEvents


@dataclass(frozen=True)
class Report:
    """A corpus run: per-file results, normalised NAB scores per profile and event metrics."""

    detector: str
    files: list[FileResult]
    normalised: dict[str, float] = field(default_factory=dict)
    events: MinuteEvents = NO_EVENTS
    false_alarms_per_day: float | None = None  # the sensitivity asked for (None: default)


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


def parse_windows(raw: list[list[str]]) -> list[Labelled]:
    """Windows as NAB writes them, `[start, end]`, or with a kind, `[start, end, kind]`."""
    windows = []
    for item in raw:
        if len(item) not in (2, 3):
            raise ConfigError(f"a window is [start, end] or [start, end, kind], not {item!r}")
        kind = str(item[2]) if len(item) == 3 else ""
        windows.append(Labelled(parse_time(item[0]), parse_time(item[1]), kind))
    return windows


def evaluate_file(
    data_dir: Path,
    relative: str,
    windows: list[list[str]],
    detector_name: str,
    out_dir: Path | None,
    false_alarms_per_day: float | None = None,
) -> FileResult:
    """Run a fresh detector over one file, optionally write its output, and score it."""
    stamps, values = read_series(data_dir / relative)
    ts = [parse_time(s) for s in stamps]
    detector = create_detector(detector_name, false_alarms_per_day)
    verdicts = detector.process_many(ts, [float(v) for v in values])
    if out_dir is not None:
        _write_output(out_dir / relative, stamps, values, verdicts)
    detections = [i for i, v in enumerate(verdicts) if v.is_anomaly]
    labelled = parse_windows(windows)
    rows = window_rows(ts, [(w.start, w.end) for w in labelled])
    scores = {name: score_file(detections, len(ts), rows, p) for name, p in PROFILES.items()}
    onsets = [ts[i] for i in detections]
    events = minute_events(labelled, onsets, ts[0], ts[-1]) if ts else NO_EVENTS
    return FileResult(relative, len(ts), scores, events)


def _write_output(
    path: Path, stamps: list[str], values: list[str], verdicts: list[Verdict]
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["timestamp", "value", "score", "is_anomaly", "kind", "severity"])
        for stamp, value, verdict in zip(stamps, values, verdicts, strict=True):
            writer.writerow(
                [
                    stamp,
                    value,
                    f"{verdict.score:.6f}",
                    int(verdict.is_anomaly),
                    verdict.kind,
                    verdict.severity,
                ]
            )


def evaluate_corpus(
    data_dir: Path,
    windows_path: Path,
    detector_name: str,
    out_dir: Path | None = None,
    false_alarms_per_day: float | None = None,
    on_file: Callable[[int, int], None] | None = None,
) -> Report:
    """Score `detector_name` on every CSV under `data_dir` against the windows file;
    `on_file(done, total)` hears of each file scored (for a progress bar).

    Scores the CSV files the windows file names (an anomaly-free file has an empty list, as
    NAB and benchmarks/corpus write them), so one data folder can hold several labelled sets.
    Raises ConfigError when there is nothing to score: no CSV under `data_dir`, or none that
    the windows file names.
    """
    create_detector(detector_name)  # fail fast on an unknown name, before forking workers
    found = {p.relative_to(data_dir).as_posix() for p in data_dir.rglob("*.csv")}
    if not found:
        raise ConfigError(f"no CSV files under {data_dir}: nothing to evaluate")
    labels: dict[str, list[list[str]]] = json.loads(windows_path.read_text())
    files = sorted(found & set(labels))
    if not files:
        raise ConfigError(
            f"{windows_path} names none of the {len(found)} CSV files under {data_dir} "
            "(its keys are paths relative to that folder)"
        )
    jobs = [
        (data_dir, f, labels.get(f, []), detector_name, out_dir, false_alarms_per_day)
        for f in files
    ]
    report = on_file or (lambda done, total: None)
    report(0, len(jobs))
    results: list[FileResult] = []
    if len(jobs) > 1:
        with multiprocessing.get_context("spawn").Pool(min(WORKERS, len(jobs))) as pool:
            for result in pool.imap(_evaluate_job, jobs, chunksize=1):  # in order
                results.append(result)
                report(len(results), len(jobs))
    else:
        results = [evaluate_file(*job) for job in jobs]
        report(len(jobs), len(jobs))
    return summarise(detector_name, results, false_alarms_per_day)


def _evaluate_job(job: tuple[Any, ...]) -> FileResult:
    return evaluate_file(*job)


def summarise(
    detector_name: str, results: list[FileResult], false_alarms_per_day: float | None = None
) -> Report:
    """Corpus totals: normalised NAB score per profile and pooled event counts."""
    scores = {}
    for name, profile in PROFILES.items():
        raw = sum(r.scores[name].raw for r in results)
        windows = sum(r.scores[name].windows for r in results)
        scores[name] = normalised(raw, windows, profile)
    events = sum((r.events for r in results), NO_EVENTS)
    return Report(detector_name, results, scores, events, false_alarms_per_day)


def format_report(report: Report, per_file: bool = False, nab: bool = False) -> str:
    """A plain-text summary: event metrics, recall per kind, false alarms per device-day, and
    (asked for) NAB's scores and a per-file table."""
    sensitivity = (
        "default" if report.false_alarms_per_day is None else f"{report.false_alarms_per_day:g}"
    )
    lines = [
        f"detector: {report.detector}   files: {len(report.files)}   "
        f"false_alarms_per_day: {sensitivity}"
    ]
    if per_file:
        lines += _per_file_table(report)
    e = report.events
    c = e.counts
    lines.append(
        f"events     precision {c.precision:.3f}   recall {c.recall:.3f}   F1 {c.f1:.3f}"
        f"   (caught {c.true_positives}, missed {c.false_negatives}, "
        f"false-alarm minutes {c.false_positives})"
    )
    days = e.normal_seconds / 86_400.0
    lines.append(
        f"normal     {days:.2f} device-days outside windows: "
        f"{e.false_alarms_per_day:.2f} false alarms per device-day"
    )
    for kind in sorted(k for k in e.total if k):
        caught, total = e.caught.get(kind, 0), e.total[kind]
        lines.append(f"  {kind:10} recall {caught / total:.3f}   ({caught} of {total})")
    if nab:
        std = report.normalised.get("standard", 0.0)
        low_fp = report.normalised.get("reward_low_FP_rate", 0.0)
        low_fn = report.normalised.get("reward_low_FN_rate", 0.0)
        lines.append(
            f"NAB score  standard {std:6.1f}   low FP {low_fp:6.1f}   low FN {low_fn:6.1f}"
        )
    return "\n".join(lines)


def _per_file_table(report: Report) -> list[str]:
    lines = [f"{'file':60} {'rows':>7} {'win':>4} {'hit':>4} {'FA min':>6} {'raw std':>8}"]
    for r in report.files:
        s = r.scores["standard"]
        c = r.events.counts
        lines.append(
            f"{r.path:60} {r.rows:7d} {c.true_positives + c.false_negatives:4d} "
            f"{c.true_positives:4d} {c.false_positives:6d} {s.raw:8.3f}"
        )
    return lines
