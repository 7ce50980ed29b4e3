"""InfluxDB line protocol bodies (Telegraf's `data_format = "influx"`) as readings.

`weather,device_id=greenhouse-01 temperature=21.4,latitude=52.5,longitude=13.4 1764291723000000000`:
any measurement name; the device from the tag `device_id` (or `device`, or the token's); the
`temperature` field (°C); `latitude`/`longitude` as fields or tags; the timestamp in
nanoseconds (optional: the time received). Escaped spaces and commas (`\\ `, `\\,`) are
understood; string field values are not readings' and are ignored.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from weatherpipe.reading import format_ts

CONTENT_TYPES = ("text/plain", "application/x-influx", "text/x-influx")
_UNESCAPED_SPACE = re.compile(r"(?<!\\) ")
_UNESCAPED_COMMA = re.compile(r"(?<!\\),")
_NUMBER = re.compile(r"-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?[iu]?")


class LineError(ValueError):
    """One line that is not a reading; the message says why, `line` is the line."""

    line = ""


def items(body: bytes) -> list[dict[str, Any] | LineError]:
    """Each non-blank, non-comment line as a reading's fields, or why it is not one."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return [LineError(f"line protocol body is not UTF-8: {exc}")]
    out: list[dict[str, Any] | LineError] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            out.append(_line(line.strip()))
        except LineError as exc:
            error = LineError(f"line {number}: {exc}")
            error.line = line
            out.append(error)
    return out


def _unescape(text: str) -> str:
    return text.replace("\\ ", " ").replace("\\,", ",").replace("\\=", "=")


def _pairs(text: str) -> dict[str, str]:
    pairs = {}
    for part in _UNESCAPED_COMMA.split(text):
        key, sep, value = part.partition("=")
        if not sep or not key:
            raise LineError(f"{part[:40]!r} is not key=value")
        pairs[_unescape(key)] = value
    return pairs


def _line(line: str) -> dict[str, Any]:
    parts = _UNESCAPED_SPACE.split(line)
    if len(parts) not in (2, 3):
        raise LineError("expected `measurement[,tags] fields [timestamp]`")
    head, fields_text = parts[0], parts[1]
    tags = _pairs(head.split(",", 1)[1]) if "," in head.replace("\\,", "") else {}
    fields = _pairs(fields_text)
    reading: dict[str, Any] = {}
    device = tags.get("device_id") or tags.get("device")
    if device is not None:
        reading["device_id"] = _unescape(device)
    for name in ("temperature", "latitude", "longitude"):
        raw = fields.get(name, tags.get(name))
        if raw is not None:
            if not _NUMBER.fullmatch(raw):
                raise LineError(f"{name} {raw[:40]!r} is not a number")
            reading[name] = float(raw.rstrip("iu"))
    if len(parts) == 3:
        stamp = parts[2]
        if not stamp.lstrip("-").isdigit():
            raise LineError(f"timestamp {stamp[:40]!r} is not an integer (nanoseconds)")
        seconds, nanos = divmod(int(stamp), 1_000_000_000)
        try:
            when = datetime.fromtimestamp(seconds, UTC) + timedelta(microseconds=nanos // 1000)
            reading["ts"] = format_ts(when)
        except (OverflowError, OSError, ValueError):
            raise LineError(f"timestamp {stamp[:40]!r} is out of range") from None
    return reading
