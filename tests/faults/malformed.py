"""Hypothesis strategies for messages that are not readings, one per way a publisher goes wrong."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from weatherpipe.errors import DecodeError
from weatherpipe.reading import MAX_MESSAGE_BYTES, REQUIRED_FIELDS, decode

DEVICE = "6b4fa32e-a7f5-4ec2-8820-6581468ef36b"


def good_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "v": 1,
        "device_id": DEVICE,
        "ts": "2026-11-28T01:02:03.456Z",
        "seq": 7,
        "temperature": 21.37,
        "latitude": 52.52,
        "longitude": 13.405,
    }
    body.update(changes)
    return body


def dumps(body: Any) -> bytes:
    # json, not orjson: it writes NaN and Infinity, as careless publishers do.
    return json.dumps(body, allow_nan=True).encode()


binary = st.binary(max_size=300)
not_utf8 = st.binary(min_size=1, max_size=100).map(lambda b: b"\xff\xfe" + b)
not_an_object = st.one_of(
    st.lists(st.integers(), max_size=5), st.text(max_size=30), st.integers(), st.none()
).map(dumps)
missing_fields = st.sets(st.sampled_from(REQUIRED_FIELDS), min_size=1).map(
    lambda gone: dumps({k: v for k, v in good_body().items() if k not in gone})
)
wrong_values = st.one_of(st.text(max_size=20), st.booleans(), st.none(), st.lists(st.integers()))
wrong_types = st.one_of(
    st.tuples(st.sampled_from(["temperature", "latitude", "longitude"]), wrong_values),
    st.tuples(st.just("device_id"), st.one_of(st.integers(), st.none(), st.text(max_size=30))),
    st.tuples(st.just("ts"), st.one_of(st.integers(), st.floats(), st.none())),
    st.tuples(st.just("seq"), st.one_of(st.text(min_size=1), st.floats(), st.booleans())),
).map(lambda kv: dumps(good_body(**{kv[0]: kv[1]})))
not_finite = st.tuples(
    st.sampled_from(["temperature", "latitude", "longitude"]),
    st.sampled_from([float("nan"), float("inf"), float("-inf")]),
).map(lambda kv: dumps(good_body(**{kv[0]: kv[1]})))
impossible = st.one_of(
    st.floats(max_value=-273.16, allow_nan=False).map(lambda t: good_body(temperature=t)),
    st.floats(min_value=90.001, max_value=1e300).map(lambda x: good_body(latitude=x)),
    st.floats(max_value=-90.001, min_value=-1e300).map(lambda x: good_body(latitude=x)),
    st.floats(min_value=180.001, max_value=1e300).map(lambda x: good_body(longitude=x)),
    st.integers(max_value=-1).map(lambda s: good_body(seq=s)),
).map(dumps)
bad_timestamps = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            "2026-11-28T01:02:03.456",  # no offset
            "2026-13-45T01:02:03Z",
            "2026-02-30T00:00:00Z",
            "28/11/2026 01:02:03",
            "yesterday",
            "2026-11-28 01:02:03",
            "",
        ]
    ),
).map(lambda ts: dumps(good_body(ts=ts)))
unknown_version = st.one_of(
    st.integers().filter(lambda v: v != 1), st.just("1"), st.just(1.0), st.just(True)
).map(lambda v: dumps(good_body(v=v)))
oversize = st.integers(MAX_MESSAGE_BYTES + 1, MAX_MESSAGE_BYTES + 32 * 1024).map(
    lambda n: dumps(good_body(note="x" * n))
)

KINDS = {
    "binary": binary,
    "not_utf8": not_utf8,
    "not_an_object": not_an_object,
    "missing_fields": missing_fields,
    "wrong_types": wrong_types,
    "not_finite": not_finite,
    "impossible": impossible,
    "bad_timestamps": bad_timestamps,
    "unknown_version": unknown_version,
}


def is_malformed(data: bytes) -> bool:
    try:
        decode(data)
    except DecodeError:
        return True
    return False


# About one message in 46 is oversize: each costs 64 KiB+ on the broker and in dead_letters.
malformed = (
    st.sampled_from([*KINDS.values()] * 5 + [oversize]).flatmap(lambda s: s).filter(is_malformed)
)


def generate(count: int) -> list[bytes]:
    """`count` malformed messages drawn by hypothesis (a fixed seed; the sample still varies)."""
    found: list[bytes] = []

    @settings(
        max_examples=count,
        database=None,
        derandomize=True,
        phases=[Phase.generate],
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(malformed)
    def collect(data: bytes) -> None:
        found.append(data)

    collect()
    # Hypothesis may stop short of max_examples; repeats are still separate messages.
    while len(found) < count:
        found.extend(found[: count - len(found)])
    return found[:count]
