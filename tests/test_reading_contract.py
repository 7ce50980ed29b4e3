"""The wire contract held strictly: RFC 3339 only, a window around the receiver's clock, values
that fit their columns, canonical device ids; each refusal with its reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from weatherpipe.errors import DecodeError
from weatherpipe.reading import MAX_SEQ, Window, decode, decode_many
from weatherpipe.testing import DEVICE_A

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def body(**changes: object) -> bytes:
    message: dict[str, object] = {
        "v": 1,
        "device_id": DEVICE_A,
        "ts": "2026-11-28T01:02:03.456Z",
        "seq": 1,
        "temperature": 21.5,
        "latitude": 52.52,
        "longitude": 13.405,
    }
    message.update(changes)
    return orjson.dumps(message)


def reason(data: bytes, window: Window = Window()) -> str:
    """decode's refusal; decode_many must give the very same one."""
    with pytest.raises(DecodeError) as caught:
        decode(data, window, NOW)
    (many,) = decode_many([data], window, NOW)
    assert isinstance(many, DecodeError) and many.reason == caught.value.reason
    return caught.value.reason


@pytest.mark.parametrize(
    "ts",
    [
        "2026-W48-6T01:02:03Z",  # ISO week date
        "20261128T010203Z",  # ISO basic format
        "2026-11-28T01:02Z",  # no seconds
        "2026-11-28T01:02:03+0100",  # offset without colon
        "2026-11-28T01:02:03,5Z",  # decimal comma
        "2026-11-28 01:02:03Z",  # space instead of T
        "2026-11-28T01:02:03",  # no offset
        "2026-11-28T01:02:03.1234567890Z",  # finer than nanoseconds
        "\uff12\uff10\uff12\uff16-11-28T01:02:03Z",  # full-width digits
        "+2026-11-28T01:02:03Z",
    ],
)
def test_only_rfc_3339_timestamps_are_read(ts: str) -> None:
    assert "is not an RFC 3339 timestamp" in reason(body(ts=ts))


@pytest.mark.parametrize(
    ("ts", "expected"),
    [
        ("2026-11-28T01:02:03Z", datetime(2026, 11, 28, 1, 2, 3, tzinfo=UTC)),
        ("2026-11-28t01:02:03.5z", datetime(2026, 11, 28, 1, 2, 3, 500000, tzinfo=UTC)),
        (
            "2026-11-28T02:02:03.123456789+01:00",
            datetime(2026, 11, 28, 1, 2, 3, 123000, tzinfo=UTC),
        ),
        ("2026-11-28T01:02:03-00:00", datetime(2026, 11, 28, 1, 2, 3, tzinfo=UTC)),
    ],
)
def test_rfc_3339_variants_are_read_in_utc(ts: str, expected: datetime) -> None:
    assert decode(body(ts=ts), now=NOW).ts == expected


@pytest.mark.parametrize(
    ("ts", "words"),
    [
        ("0001-01-01T00:00:00+01:00", "is before 2000-01-01T00:00:00.000Z, the oldest accepted"),
        ("9999-12-31T23:59:59-01:00", "too far ahead of the receiver's clock"),
        ("9999-12-31T23:59:59.999Z", "too far ahead of the receiver's clock"),
        ("1999-12-31T23:59:59.999Z", "the oldest accepted"),
        ("2026-11-29T12:00:00.001Z", "after 2026-11-29T12:00:00.000Z"),
        ("2026-02-30T00:00:00Z", "is not a valid date and time"),
        ("2026-11-28T24:00:00Z", "is not a valid date and time"),
        ("2026-11-28T01:02:60Z", "is not a valid date and time"),  # leap seconds: not in UTC
    ],
)
def test_timestamps_outside_the_window_or_the_calendar_are_refused(ts: str, words: str) -> None:
    assert words in reason(body(ts=ts))


def test_the_window_is_configurable() -> None:
    window = Window(oldest=datetime(2020, 1, 1, tzinfo=UTC), ahead=timedelta(minutes=5))
    assert decode(body(ts="2026-11-28T12:05:00Z"), window, NOW)
    assert "too far ahead" in reason(body(ts="2026-11-28T12:05:00.001Z"), window)
    assert "the oldest accepted" in reason(body(ts="2019-12-31T23:59:59Z"), window)
    assert decode(body(ts="2000-01-01T00:00:00Z"), now=NOW)  # the default's first instant


@pytest.mark.parametrize(
    "device",
    [
        DEVICE_A.upper(),
        DEVICE_A.replace("-", ""),
        "{" + DEVICE_A + "}",
        "urn:uuid:" + DEVICE_A,
        DEVICE_A.replace("6", "\uff16"),  # full-width digit six
        DEVICE_A + "\n",
        " " + DEVICE_A,
    ],
)
def test_only_canonical_lower_case_uuids_are_device_ids(device: str) -> None:
    refusal = reason(body(device_id=device))
    assert "is neither a canonical UUID" in refusal
    assert refusal.isascii()  # any database charset stores the reason


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"seq": MAX_SEQ + 1}, "seq must be an integer from 0 to 9223372036854775807"),
        ({"seq": 2**64 - 1}, "seq must be an integer from 0"),
        ({"temperature": 1e308}, "is above 10000, hotter than any sensor reads"),
        ({"temperature": 10_000.001}, "is above 10000"),
        ({"temperature": 2**64 - 1}, "is above 10000"),
        ({"latitude": -90.0000001}, "latitude -90.0000001 is outside [-90, 90]"),
        ({"v": "x" * 10_000}, "unknown schema version 'xxxx"),
    ],
)
def test_values_that_would_not_fit_their_columns_are_refused(
    changes: dict[str, object], words: str
) -> None:
    refusal = reason(body(**changes))
    assert words in refusal
    assert len(refusal) < 200


def test_the_largest_values_that_fit_are_read() -> None:
    reading = decode(body(seq=MAX_SEQ, temperature=10_000.0, latitude=-90.0), now=NOW)
    assert (reading.seq, reading.temperature, reading.latitude) == (MAX_SEQ, 10_000.0, -90.0)
    assert decode(body(temperature=-0.0), now=NOW).temperature == 0.0


def test_a_huge_integer_is_refused_not_overflowed() -> None:
    assert "infinity" in reason(body().replace(b"21.5", b"9" * 400))
