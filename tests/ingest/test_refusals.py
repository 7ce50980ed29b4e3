"""A refused message's dead letter always fits its row, whatever size the sender chose."""

from __future__ import annotations

import orjson

from weatherpipe.bus.base import Message
from weatherpipe.ingest.refusals import (
    DROPPED,
    MAX_ATTRIBUTES_BYTES,
    MAX_DATA_BYTES,
    MAX_REASON_CHARS,
    bare,
    dead_letter,
)


def test_small_attributes_are_kept_as_they_are() -> None:
    attributes = {"signature": "sha256=" + "ab" * 32, "key_id": "dev"}
    assert dead_letter(Message(b"x", attributes), "bad").attributes == attributes


def test_a_long_header_is_cut_to_fit() -> None:
    letter = dead_letter(Message(b"x", {"x-pill": '"\\' * 20_000, "key_id": "dev"}), "bad")
    assert letter.attributes is not None
    assert len(orjson.dumps(dict(letter.attributes))) <= MAX_ATTRIBUTES_BYTES
    assert letter.attributes["x-pill"].startswith('"\\"\\')
    assert letter.attributes["x-pill"].endswith("(38,976 more characters)")
    assert letter.attributes["key_id"] == "dev"


def test_attributes_past_the_limit_are_dropped_and_counted() -> None:
    many = {f"h{i}": "v" * 1000 for i in range(100)}
    letter = dead_letter(Message(b"x", many), "bad")
    assert letter.attributes is not None
    assert len(orjson.dumps(dict(letter.attributes))) <= MAX_ATTRIBUTES_BYTES
    kept = len(letter.attributes) - 1
    assert letter.attributes[DROPPED] == f"{100 - kept} attributes too long to keep"


def test_text_no_database_stores_is_escaped() -> None:
    letter = dead_letter(Message(b"x", {"k": "\ud800" + "v" * 20_000}), "caf\u00e9 \U0001f600")
    assert letter.attributes is not None
    assert letter.attributes["k"].startswith("\\ud800v")
    assert letter.reason == "caf\\xe9 \\U0001f600"


def test_a_huge_body_keeps_its_first_mebibyte_and_says_so() -> None:
    body = b"y" * (3 * MAX_DATA_BYTES)
    letter = dead_letter(Message(body), "message is too big")
    assert letter.data == body[:MAX_DATA_BYTES]
    assert letter.reason.endswith("(kept the first 1,048,576 of 3,145,728 bytes)")


def test_a_long_reason_is_cut_to_its_column() -> None:
    letter = dead_letter(Message(b"x"), "because " * 200)
    assert len(letter.reason) == MAX_REASON_CHARS and letter.reason.endswith("...")


def test_a_dead_letter_is_keyed_by_the_brokers_message_id_whatever_its_bytes() -> None:
    first = dead_letter(Message(b"{", {}, "handle-1", "nats:S:7:1733"), "not JSON")
    again = dead_letter(Message(b"{", {}, "handle-2", "nats:S:7:1733"), "refused by the database")
    twin = dead_letter(Message(b"{", {}, "handle-3", "nats:S:8:1734"), "not JSON")
    assert first.key == again.key  # a redelivery: other handle, maybe another reason
    assert twin.key != first.key  # the same bytes in another message are another dead letter
    assert first.key is not None and len(first.key) == 32


def test_without_a_message_id_the_key_is_the_attributes_and_bytes() -> None:
    """MQTT's fallback: a redelivery has the same key; so does a byte-identical message."""
    key = dead_letter(Message(b"{", {"topic_device": "d1"}), "not JSON").key
    assert dead_letter(Message(b"{", {"topic_device": "d1"}), "ts is ahead of now").key == key
    assert dead_letter(Message(b"{", {"topic_device": "d2"}), "not JSON").key != key
    assert dead_letter(Message(b"{ ", {"topic_device": "d1"}), "not JSON").key != key
    assert dead_letter(Message(b"{"), "not JSON").key != key
    lone = dead_letter(Message(b"{", {"k": "\udcff"}), "bad")  # a lone surrogate still hashes
    assert lone.key is not None


def test_a_bare_dead_letter_keeps_its_key() -> None:
    letter = dead_letter(Message(b"x" * 100_000, {"h": "v"}, None, "memory:abc:1"), "bad")
    assert bare(letter, "refused").key == letter.key
