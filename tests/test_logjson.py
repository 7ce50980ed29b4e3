"""JSON logs: every record one parseable JSON object, extras and exceptions kept."""

from __future__ import annotations

import json
import logging
import sys

from weatherpipe.logjson import JsonFormatter


def record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    rec = logging.LogRecord("weatherpipe.test", logging.WARNING, __file__, 1, message, args, None)
    rec.__dict__.update(extra)
    return rec


def test_a_record_is_one_line_of_json_with_the_stage_and_extras() -> None:
    line = JsonFormatter(stage="ingest").format(
        record('bus said "no"\nretrying %s', "soon", batch=7)
    )
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["message"] == 'bus said "no"\nretrying soon'
    assert (entry["level"], entry["logger"], entry["stage"], entry["batch"]) == (
        "WARNING",
        "weatherpipe.test",
        "ingest",
        7,
    )
    assert entry["time"].endswith("+00:00") and isinstance(entry["pid"], int)


def test_an_exception_is_kept_as_its_traceback() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        rec = record("failed")
        rec.exc_info = sys.exc_info()
    entry = json.loads(JsonFormatter().format(rec))
    assert "ValueError: boom" in entry["exception"]
    assert "stage" not in entry
