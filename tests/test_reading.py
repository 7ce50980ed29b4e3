"""The wire format, schema v1: what is a reading and what is not, and why."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from weatherpipe.errors import DecodeError
from weatherpipe.reading import Reading, decode, decode_many, encode, format_ts
from weatherpipe.testing import DEVICE_A, DEVICE_B

VALID = {
    "v": 1,
    "device_id": DEVICE_A,
    "ts": "2026-11-28T01:02:03.456Z",
    "seq": 1234,
    "temperature": 21.37,
    "latitude": 52.52,
    "longitude": 13.405,
}


def body(**changes: object) -> bytes:
    message = {**VALID, **changes}
    return orjson.dumps({k: v for k, v in message.items() if v is not ...})


def test_decode_reads_the_design_example() -> None:
    reading = decode(body())
    assert reading == Reading(
        DEVICE_A, datetime(2026, 11, 28, 1, 2, 3, 456000, tzinfo=UTC), 21.37, 52.52, 13.405, 1234
    )


def test_encode_then_decode_is_the_same_reading() -> None:
    reading = decode(body())
    assert decode(encode(reading)) == reading
    assert orjson.loads(encode(reading))["ts"] == "2026-11-28T01:02:03.456Z"


def test_seq_is_optional_for_foreign_publishers() -> None:
    assert decode(body(seq=...)).seq is None


def test_offsets_are_converted_to_utc_and_truncated_to_milliseconds() -> None:
    reading = decode(body(ts="2026-11-28T02:02:03.456789+01:00"))
    assert format_ts(reading.ts) == "2026-11-28T01:02:03.456Z"


def test_uppercase_uuid_is_refused_not_normalised() -> None:
    with pytest.raises(DecodeError, match="neither a canonical UUID"):
        decode(body(device_id=DEVICE_A.upper()))


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"not json", "not valid UTF-8 JSON"),
        (b"\xff\xfe\x00", "not valid UTF-8 JSON"),
        (b"[1, 2]", "expected a JSON object, got list"),
        (body(temperature=...), "missing field(s): temperature"),
        (body(v=...), "missing field(s): v"),
        (body(v=2), "unknown schema version 2"),
        (body(v="1"), "unknown schema version '1'"),
        (body(temperature="21.3"), "temperature must be a number, got str"),
        (body(temperature=True), "temperature must be a number, got bool"),
        (body(temperature=-300.0), "temperature -300.0 is below absolute zero"),
        (body(latitude=91.0), "latitude 91.0 is outside [-90, 90]"),
        (body(longitude=-181), "longitude -181.0 is outside [-180, 180]"),
        (body(device_id="Sensor-1"), "device_id 'Sensor-1' is neither a canonical UUID"),
        (body(device_id="-sensor"), "device_id '-sensor' is neither a canonical UUID"),
        (body(device_id="s" * 65), "is neither a canonical UUID"),
        (body(device_id="a/b"), "device_id 'a/b' is neither a canonical UUID"),
        (body(longitude=...), "latitude without longitude: send both, or neither"),
        (body(latitude=...), "longitude without latitude: send both, or neither"),
        (body(device_id=7), "device_id must be a string, got int"),
        (body(ts="yesterday"), "ts 'yesterday' is not an RFC 3339 timestamp"),
        (body(ts="2026-11-28T01:02:03"), "ts '2026-11-28T01:02:03' is not an RFC 3339"),
        (body(ts=1732755723), "ts must be an RFC 3339 string, got int"),
        (body(seq=-1), "seq must be an integer from 0 to 9223372036854775807, got -1"),
        (body(seq=1.5), "seq must be an integer from 0 to 9223372036854775807, got 1.5"),
        (b'{"v":1,"temperature":NaN}', "not valid UTF-8 JSON"),
        (b" " * (64 * 1024 + 1), "over the 65536-byte limit"),
    ],
)
def test_decode_refuses_with_a_precise_reason(data: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as caught:
        decode(data)
    assert reason in caught.value.reason


def test_infinite_temperature_is_refused() -> None:
    # A huge exponent would parse as inf; the decoder refuses it.
    with pytest.raises(DecodeError, match="infinity"):
        decode(body().replace(b"21.37", b"1e999"))


# decode_many must answer exactly as decode does, message by message: its fast path only skips
# work for messages in the sensors' own form. Each message is a valid one with up to two fields
# swapped for odd (still valid) or wrong values.
_VALID_FIELDS = {
    "v": st.just(1),
    "device_id": st.sampled_from([DEVICE_A, DEVICE_B]),
    "ts": st.sampled_from(["2026-11-28T01:02:03.456Z", "2026-11-28T01:02:04.000Z"]),
    "temperature": st.floats(-273.15, 1e6),
    "latitude": st.floats(-90, 90),
    "longitude": st.floats(-180, 180),
    "seq": st.one_of(st.none(), st.integers(0, 2**63)),
}
_ODD_VALUES = {
    "v": st.sampled_from([2, 1.0, True, "1", None, ...]),
    "device_id": st.sampled_from(
        [DEVICE_A.upper(), DEVICE_A.replace("-", ""), "not-a-uuid", 7, None, [], ...]
    ),
    "ts": st.sampled_from(
        [
            "2026-11-28T01:02:03.456789+02:00",
            "2026-11-28 01:02:03Z",
            "2026-11-28T01:02:03",
            "2026-13-28T01:02:03Z",
            "yesterday",
            1764291723,
            {},
            ...,
        ]
    ),
    "temperature": st.one_of(
        st.floats(-300, -273.15),
        st.integers(-400, 400),
        st.sampled_from([-273.16, "21.5", True, None, ...]),
    ),
    "latitude": st.one_of(
        st.floats(-100, 100),
        st.sampled_from([-90.5, -91.0, -95.0, 90.000001, 0, -90, 45, "N", None, ...]),
    ),
    "longitude": st.one_of(
        st.floats(-200, 200), st.sampled_from([-180.5, -190.0, 180.1, 0, 180, None])
    ),
    "seq": st.one_of(st.integers(-3, -1), st.sampled_from([1.5, False, "3", 2.0])),
}


@st.composite
def _messages(draw: st.DrawFn) -> bytes:
    fields = draw(st.fixed_dictionaries(_VALID_FIELDS))
    for name in draw(st.lists(st.sampled_from(sorted(_ODD_VALUES)), min_size=1, max_size=2)):
        fields[name] = draw(_ODD_VALUES[name])
    return body(**fields)


_MESSAGES = st.one_of(
    st.fixed_dictionaries(_VALID_FIELDS).map(lambda fields: body(**fields)),
    _messages(),
    st.sampled_from([b"", b"[]", b"null", b"{", b"\xff\xfe", b'{"v": 1e999}']),
    st.just(body()).map(lambda data: data.replace(b"21.37", b"1e999")),
    st.just(body()).map(lambda data: data + b" " * 70_000),
)


def _one_by_one(data: bytes) -> str:
    try:
        return repr(decode(data))  # repr, so 20 and 20.0 differ
    except DecodeError as exc:
        return exc.reason


@settings(max_examples=500, deadline=None)
@given(st.lists(_MESSAGES, max_size=20))
def test_decode_many_answers_as_decode_does(messages: list[bytes]) -> None:
    answers = [a.reason if isinstance(a, DecodeError) else repr(a) for a in decode_many(messages)]
    assert answers == [_one_by_one(data) for data in messages]


def test_decode_many_parses_a_shared_timestamp_once_per_call() -> None:
    fleet = [body(device_id=DEVICE_A), body(device_id=DEVICE_B), body(temperature=-300.0)]
    first, second, refused = decode_many(fleet)
    assert isinstance(first, Reading) and isinstance(second, Reading)
    assert first.ts is second.ts
    assert isinstance(refused, DecodeError) and "absolute zero" in refused.reason
