"""The alerts file: a plain TOML example loads; each kind of mistake is one line naming it."""

from __future__ import annotations

from pathlib import Path

import pytest

from weatherpipe.alerts.rules import AnomalyRule, LagRule, SilenceRule, ThresholdRule, load_alerts
from weatherpipe.errors import ConfigError

EXAMPLE = """
interval_seconds = 2

[[receivers]]
name = "ops"
type = "webhook"
url = "http://127.0.0.1:9000/hook"
headers = { Authorization = "Bearer s3cret" }

[[receivers]]
name = "am"
type = "alertmanager"
url = "http://127.0.0.1:9093"

[[rules]]
name = "bad-readings"
type = "anomaly"
kinds = ["spike", "range"]
min_severity = "medium"

[[rules]]
name = "too-hot"
type = "threshold"
above = 35
for_minutes = 5
devices = ["greenhouse-01"]
receivers = ["ops"]

[[rules]]
name = "silent"
type = "silence"
minutes = 10

[[rules]]
name = "slow-detection"
type = "lag"
stage = "detection"
seconds = 60
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "alerts.toml"
    path.write_text(text)
    return path


def test_the_documented_example_loads(tmp_path: Path) -> None:
    config = load_alerts(write(tmp_path, EXAMPLE))
    assert [type(r) for r in config.rules] == [AnomalyRule, ThresholdRule, SilenceRule, LagRule]
    hot = config.rules[1]
    assert [r.name for r in config.receivers_of(hot)] == ["ops"]
    assert [r.name for r in config.receivers_of(config.rules[0])] == ["ops", "am"]
    assert config.interval_seconds == 2 and config.max_attempts == 10


def test_the_docs_example_is_this_example() -> None:
    docs = (Path(__file__).parents[2] / "docs" / "alerts.md").read_text()
    assert EXAMPLE.strip() in docs


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ('min_severity = "medium"', 'min_severity = "urgent"'),
            "rules['bad-readings'].min_severity: Input should be 'low', 'medium' or 'high'",
        ),
        (
            ("above = 35", "above = 35\nbelow = 0"),
            "rules['too-hot']: give exactly one of `above` and `below`",
        ),
        (("minutes = 10", "minutes = -1"), "rules['silent'].minutes: Input should be greater"),
        (
            ('receivers = ["ops"]', 'receivers = ["pager"]'),
            "rule 'too-hot': no receiver named 'pager'",
        ),
        (('type = "webhook"', 'type = "email"'), "receivers['ops'].type: Input should be"),
        (
            ('stage = "detection"', 'stage = "detection"\nsecs = 3'),
            "rules['slow-detection'].secs: Extra inputs are not permitted",
        ),
        (('name = "silent"', 'name = "too-hot"'), "rules: 'too-hot' is named twice"),
        (('[[rules]]\nname = "silent"', '[[rules]\nname = "silent"'), "not TOML"),
    ],
)
def test_a_bad_value_is_one_line_naming_it(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    path = write(tmp_path, EXAMPLE.replace(*change))
    with pytest.raises(ConfigError) as caught:
        load_alerts(path)
    text = str(caught.value)
    assert text.startswith(f"WEATHERPIPE_ALERTS_FILE {path}: ")
    assert message in text and "\n" not in text


def test_a_missing_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="No such file"):
        load_alerts(tmp_path / "nowhere.toml")
