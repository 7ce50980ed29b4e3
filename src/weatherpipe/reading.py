"""The Reading type and its wire codec (schema v1): pure, no I/O."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import orjson

from weatherpipe.errors import DecodeError

SCHEMA_VERSION = 1
MAX_MESSAGE_BYTES = 64 * 1024
ABSOLUTE_ZERO_C = -273.15
# Hotter than any thermometer reads (the sun's surface is ~5,500 °C), and small enough that
# no rollup sum of a device's readings can overflow a double.
MAX_TEMPERATURE_C = 10_000.0
# seq is stored as a signed 64-bit integer (BIGINT).
MAX_SEQ = 2**63 - 1
REQUIRED_FIELDS = ("v", "device_id", "ts", "temperature")
# latitude and longitude come together or not at all (then the registry's place is used).
PLACE_FIELDS = ("latitude", "longitude")
# A device id: a canonical UUID (lower-case hex, 8-4-4-4-12) or a readable id such as
# "greenhouse-01": 1 to 64 of [a-z0-9._-], starting with a letter or digit. [a-z] and [0-9],
# not \w or IGNORECASE: only ASCII, only lower case, so no two spellings of one device (upper
# case, full-width digits) can ever be stored as two devices or merged into one. A canonical
# UUID is itself such an id; an upper-case UUID is not.
DEVICE_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
# A UUID without its dashes would be a second spelling of a UUID device: refused.
_BARE_UUID = re.compile(r"[0-9a-f]{32}")


def is_device_id(value: str) -> bool:
    """Whether `value` is a device id as the registry and the wire accept it."""
    return DEVICE_ID.fullmatch(value) is not None and _BARE_UUID.fullmatch(value) is None


# RFC 3339 section 5.6 (T and Z may be lower case); fractions up to nanoseconds. Python's own
# fromisoformat also takes ISO week dates, basic format and missing seconds, so this gates it.
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?"
    r"(?:[Zz]|[+-][0-9]{2}:[0-9]{2})"
)
OLDEST_TS = datetime(2000, 1, 1, tzinfo=UTC)
MAX_CLOCK_AHEAD = timedelta(days=1)


class Window(NamedTuple):
    """The timestamps a receiver accepts: none before `oldest`, none more than `ahead` past
    its own clock (a sensor whose clock ran off must not move a device's detector to 2099)."""

    oldest: datetime = OLDEST_TS
    ahead: timedelta = MAX_CLOCK_AHEAD

    def bounds(self, now: datetime | None = None) -> tuple[datetime, datetime]:
        """(earliest, latest) accepted at `now` (default: the clock)."""
        return self.oldest, (now or datetime.now(UTC)) + self.ahead


DEFAULT_WINDOW = Window()


class Reading(NamedTuple):
    """One temperature reading; its identity is (device_id, ts).

    A NamedTuple rather than a frozen dataclass: as immutable, and made in a third of the time
    (ingest makes tens of thousands a second).
    """

    device_id: str
    ts: datetime
    temperature: float
    latitude: float | None  # None: the message named no place (the registry gives it)
    longitude: float | None
    seq: int | None = None

    @property
    def key(self) -> tuple[str, datetime]:
        return (self.device_id, self.ts)


def format_ts(ts: datetime) -> str:
    """RFC 3339 in UTC with milliseconds, e.g. 2026-11-28T01:02:03.456Z."""
    # isoformat is several times cheaper than strftime (the simulator formats 10,000 a second).
    return ts.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def to_millis(ts: datetime) -> datetime:
    """The same instant in UTC, truncated to whole milliseconds (the precision of the key)."""
    if ts.tzinfo is not UTC:
        ts = ts.astimezone(UTC)
    extra = ts.microsecond % 1000
    return ts.replace(microsecond=ts.microsecond - extra) if extra else ts


def encode(reading: Reading) -> bytes:
    """The schema v1 JSON bytes of a reading."""
    body: dict[str, object] = {
        "v": SCHEMA_VERSION,
        "device_id": reading.device_id,
        "ts": format_ts(reading.ts),
        "temperature": reading.temperature,
    }
    if reading.latitude is not None and reading.longitude is not None:
        body["latitude"] = reading.latitude
        body["longitude"] = reading.longitude
    if reading.seq is not None:
        body["seq"] = reading.seq
    return orjson.dumps(body)


def decode(data: bytes, window: Window = DEFAULT_WINDOW, now: datetime | None = None) -> Reading:
    """Parse and validate one message; DecodeError says precisely why it is not a reading.

    `ts` must fall in `window` as seen at `now` (default: the clock)."""
    return _decode(data, *window.bounds(now))


def _decode(data: bytes, earliest: datetime, latest: datetime) -> Reading:
    if len(data) > MAX_MESSAGE_BYTES:
        raise DecodeError(f"message is {len(data)} bytes, over the {MAX_MESSAGE_BYTES}-byte limit")
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"not valid UTF-8 JSON: {exc}") from None
    if not isinstance(body, dict):
        raise DecodeError(f"expected a JSON object, got {type(body).__name__}")
    missing = [name for name in REQUIRED_FIELDS if name not in body]
    if missing:
        raise DecodeError(f"missing field(s): {', '.join(missing)}")
    version = body["v"]
    if type(version) is not int or version != SCHEMA_VERSION:
        raise DecodeError(
            f"unknown schema version {_show(version)} (this ingest reads v{SCHEMA_VERSION})"
        )
    place = [name in body for name in PLACE_FIELDS]
    if any(place) and not all(place):
        given, lacking = PLACE_FIELDS if place[0] else PLACE_FIELDS[::-1]
        raise DecodeError(f"{given} without {lacking}: send both, or neither")
    return Reading(
        device_id=_device_id(body["device_id"]),
        ts=_timestamp(body["ts"], earliest, latest),
        temperature=_temperature(body["temperature"]),
        latitude=_coordinate("latitude", body["latitude"], 90.0) if all(place) else None,
        longitude=_coordinate("longitude", body["longitude"], 180.0) if all(place) else None,
        seq=_seq(body.get("seq")),
    )


def decode_many(
    messages: Iterable[bytes], window: Window = DEFAULT_WINDOW, now: datetime | None = None
) -> list[Reading | DecodeError]:
    """decode() over many messages: for each, its Reading or the DecodeError saying why not.

    The answers are decode()'s own (a property test holds them equal); only the cost differs.
    A message in the sensors' own form (float values, a place) is checked inline, and
    each timestamp and device id is parsed once per call: a fleet's tick shares one timestamp.
    Anything else, valid or not, goes through decode(), with the same window at the same `now`.
    """
    earliest, latest = window.bounds(now)
    stamps: dict[str, datetime] = {}
    devices: set[str] = set()
    out: list[Reading | DecodeError] = []
    for data in messages:
        try:
            body = orjson.loads(data) if len(data) <= MAX_MESSAGE_BYTES else None
        except orjson.JSONDecodeError:
            body = None
        if type(body) is dict:
            version = body.get("v")
            device = body.get("device_id")
            ts = body.get("ts")
            t = body.get("temperature")
            lat = body.get("latitude")
            lon = body.get("longitude")
            seq = body.get("seq")
            when = stamps.get(ts) if type(ts) is str else None
            if (
                type(version) is int
                and version == SCHEMA_VERSION
                and type(device) is str
                and (device in devices or _known(device, devices))
                and (
                    when is not None
                    or (when := _known_stamp(ts, stamps, earliest, latest)) is not None
                )
                and type(t) is float
                and ABSOLUTE_ZERO_C <= t <= MAX_TEMPERATURE_C  # also false for nan
                and type(lat) is float
                and -90.0 <= lat <= 90.0
                and type(lon) is float
                and -180.0 <= lon <= 180.0
                and (seq is None or (type(seq) is int and 0 <= seq <= MAX_SEQ))
            ):
                out.append(Reading(device, when, t, lat, lon, seq))
                continue
        try:
            out.append(_decode(data, earliest, latest))
        except DecodeError as exc:
            out.append(exc)
    return out


def _known(device: str, devices: set[str]) -> bool:
    """Whether `device` is a valid device id (remembered in `devices` if so)."""
    if is_device_id(device):
        devices.add(device)
        return True
    return False


def _known_stamp(
    ts: object, stamps: dict[str, datetime], earliest: datetime, latest: datetime
) -> datetime | None:
    """`ts` parsed (and remembered in `stamps`), or None if it is not a valid timestamp."""
    if type(ts) is not str:
        return None
    try:
        when = stamps[ts] = _timestamp(ts, earliest, latest)
    except DecodeError:
        return None
    return when


def _show(value: object, limit: int = 64) -> str:
    """A value for a reason: ASCII only (any database charset takes it), and short."""
    text = ascii(value[:limit] if isinstance(value, str) else value)
    return text if len(text) <= limit + 2 else text[:limit] + "..."


def _number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise DecodeError(f"{name} must be a number, got {type(value).__name__}")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise DecodeError(f"{name} must be finite, got {_show(value)}")
    return number


def _temperature(value: object) -> float:
    temperature = _number("temperature", value)
    if temperature < ABSOLUTE_ZERO_C:
        raise DecodeError(f"temperature {temperature} is below absolute zero")
    if temperature > MAX_TEMPERATURE_C:
        raise DecodeError(
            f"temperature {temperature} is above {MAX_TEMPERATURE_C:g}, "
            "hotter than any sensor reads"
        )
    return temperature


def _coordinate(name: str, value: object, limit: float) -> float:
    number = _number(name, value)
    if not -limit <= number <= limit:
        raise DecodeError(f"{name} {number} is outside [-{limit:g}, {limit:g}]")
    return number


def _device_id(value: object) -> str:
    if not isinstance(value, str):
        raise DecodeError(f"device_id must be a string, got {type(value).__name__}")
    if is_device_id(value):
        return value
    # Never normalised: an upper-case or braced spelling is another publisher's bug to fix,
    # and accepting it would merge two spellings into one device.
    raise DecodeError(
        f"device_id {_show(value)} is neither a canonical UUID (lower-case hex, 8-4-4-4-12) "
        "nor a readable id (1-64 of a-z 0-9 . _ -, starting with a letter or digit)"
    )


def _timestamp(value: object, earliest: datetime, latest: datetime) -> datetime:
    if not isinstance(value, str):
        raise DecodeError(f"ts must be an RFC 3339 string, got {type(value).__name__}")
    if not _RFC3339.fullmatch(value):
        raise DecodeError(
            f"ts {_show(value)} is not an RFC 3339 timestamp "
            "(YYYY-MM-DDTHH:MM:SS[.fff]Z or with a +HH:MM offset)"
        )
    try:
        # T and Z may come in lower case; fromisoformat takes only upper.
        lower = value[10] == "t" or value[-1] == "z"
        ts = datetime.fromisoformat(value.upper() if lower else value)
    except ValueError:
        raise DecodeError(f"ts {_show(value)} is not a valid date and time") from None
    if ts < earliest:
        raise DecodeError(f"ts {_show(value)} is before {format_ts(earliest)}, the oldest accepted")
    if ts > latest:
        raise DecodeError(
            f"ts {_show(value)} is after {format_ts(latest)}, too far ahead of the receiver's clock"
        )
    try:
        return to_millis(ts)
    except OverflowError:  # only with a window reaching year 1 or 9999
        raise DecodeError(f"ts {_show(value)} is out of range in UTC") from None


def _seq(value: object) -> int | None:
    if value is None:
        return None
    if type(value) is not int or not 0 <= value <= MAX_SEQ:
        raise DecodeError(f"seq must be an integer from 0 to {MAX_SEQ}, got {_show(value)}")
    return value
