"""evaluate_corpus over a few real NAB files: scores, reports, and one output row per input row."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from weatherpipe.detect.evaluate import evaluate_corpus, format_report

NAB = Path(__file__).resolve().parents[3] / "shared" / "benchmarks" / "nab"
FILES = [
    "realTraffic/speed_7578.csv",
    "realAWSCloudwatch/iio_us-east-1_i-a2eb1cd9_NetworkIn.csv",
    "artificialNoAnomaly/art_daily_no_noise.csv",
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if not (NAB / "data").is_dir():
        pytest.skip(f"SKIPPED LOUDLY: NAB corpus not found at {NAB}")
    root = tmp_path_factory.mktemp("nab")
    data = root / "data"
    for name in FILES:
        (data / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(NAB / "data" / name, data / name)
    labels = json.loads((NAB / "labels" / "combined_windows.json").read_text())
    windows = root / "windows.json"
    windows.write_text(json.dumps({name: labels[name] for name in FILES}))
    return data, windows


def test_evaluate_writes_one_scored_row_per_input_row(
    corpus: tuple[Path, Path], tmp_path: Path
) -> None:
    data, windows = corpus
    report = evaluate_corpus(data, windows, "default", tmp_path / "out")
    assert [r.path for r in report.files] == sorted(FILES)
    for name in FILES:
        with (data / name).open() as source, (tmp_path / "out" / name).open() as result:
            rows_in = list(csv.reader(source))
            rows_out = list(csv.reader(result))
        assert rows_out[0] == ["timestamp", "value", "score", "is_anomaly"]
        assert [r[:2] for r in rows_out[1:]] == rows_in[1:]
        assert all(0.0 <= float(r[2]) <= 1.0 and r[3] in {"0", "1"} for r in rows_out[1:])


def test_evaluate_scores_and_reports_every_profile(corpus: tuple[Path, Path]) -> None:
    data, windows = corpus
    report = evaluate_corpus(data, windows, "kmeans-minute", None)
    # kmeans-minute never fires on 5-minute data: exactly the null detector, 0 on every profile.
    assert report.normalised == {
        "standard": 0.0,
        "reward_low_FP_rate": 0.0,
        "reward_low_FN_rate": 0.0,
    }
    assert report.events.true_positives == 0
    assert report.events.false_negatives == 6  # 4 windows in speed_7578, 2 in NetworkIn
    text = format_report(report, per_file=True)
    assert "standard" in text and "low FP" in text and "F1" in text
    assert all(name in text for name in FILES)
