"""Measures vigil's tails on a corpus's normal time: the numbers calibration.TAILS holds.

    python -m benchmarks.detect_calibrate CORPUS_DIR/data CORPUS_DIR/labels/tuning_windows.json

For each test: the chance a monitored reading of normal time (outside every window, and more
than 10 minutes after one ends, when a detector is still settling) passes the test's two
reference levels, the slope between them, quantiles of the statistic, and, per labelled kind,
the median over windows of the statistic's largest value inside the window (how far past
normal each kind pushes each test). Run it on the tuning set only.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from weatherpipe.detect import calibration
from weatherpipe.detect.evaluate import parse_time, parse_windows, read_series
from weatherpipe.detect.vigil import VigilDetector

SETTLE_SECONDS = 600.0


def trace_file(path: Path) -> np.ndarray:
    """Every monitored reading's time, five statistics and five lines."""
    stamps, values = read_series(path)
    detector = VigilDetector()
    detector.trace = []
    detector.process_many([parse_time(s) for s in stamps], [float(v) for v in values])
    return np.array(detector.trace) if detector.trace else np.zeros((0, 11))


def main(argv: list[str]) -> None:
    data_dir, windows_path = Path(argv[0]), Path(argv[1])
    labels = json.loads(windows_path.read_text())
    normal: list[np.ndarray] = []
    peaks: dict[str, list[np.ndarray]] = {}
    for relative, raw in sorted(labels.items()):
        trace = trace_file(data_dir / relative)
        keep = np.ones(len(trace), dtype=bool)
        for w in parse_windows(raw):
            inside = (trace[:, 0] >= w.start) & (trace[:, 0] <= w.end)
            keep &= ~((trace[:, 0] >= w.start) & (trace[:, 0] <= w.end + SETTLE_SECONDS))
            if inside.any():
                peaks.setdefault(w.kind, []).append(trace[inside, 1:6].max(axis=0))
        normal.append(trace[keep])
    stats = np.concatenate(normal)[:, 1:6]
    print(f"{len(stats):,} monitored readings of normal time")
    for k, (name, tail) in enumerate(calibration.TAILS.items()):
        p = float((stats[:, k] > tail.ref).mean())
        q = np.quantile(stats[:, k], [0.99, 0.999, 0.9999, 0.99999, 1.0])
        # The tail's slope between the reference level and the 99.99th percentile.
        far = float((stats[:, k] > q[2]).mean())
        slope = np.log(max(p, 1e-12) / max(far, 1e-12)) / max(q[2] - tail.ref, 1e-9)
        print(
            f"{name:6} p(>{tail.ref:g})={p:.2e} slope to q99.99 {slope:.2f}"
            f"  q99..max {np.round(q, 2).tolist()}"
        )
    for kind, rows in sorted(peaks.items()):
        median = np.median(np.array(rows), axis=0)
        peak = dict(zip(calibration.TAILS, np.round(median, 1).tolist(), strict=True))
        print(f"  {kind:6} window peaks (median) {peak}")


if __name__ == "__main__":
    main(sys.argv[1:])
