"""Dead letters ingest makes of refused messages, bounded so that their row always fits.

A hostile message chooses its own size and headers: the raw bytes are kept up to
MAX_DATA_BYTES, each attribute up to MAX_VALUE_CHARS and all of them up to MAX_ATTRIBUTES_BYTES
of JSON (the `attributes` column is TEXT: 65,535 bytes on MySQL), and the reason up to its
column's 500 characters, in ASCII so that any database charset takes it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import orjson

from weatherpipe.bus.base import Message
from weatherpipe.storage.rows import DeadLetter

# NATS's default max_payload: every message a default broker delivers is kept whole.
MAX_DATA_BYTES = 1024 * 1024
MAX_KEY_CHARS = 256
MAX_VALUE_CHARS = 1024
MAX_ATTRIBUTES_BYTES = 16 * 1024
MAX_REASON_CHARS = 500
DROPPED = "weatherpipe-dropped"


def dead_letter(message: Message, reason: str) -> DeadLetter:
    """The dead letter of `message`, refused for `reason`."""
    data = message.data
    if len(data) > MAX_DATA_BYTES:
        reason = f"{reason} (kept the first {MAX_DATA_BYTES:,} of {len(data):,} bytes)"
        data = data[:MAX_DATA_BYTES]
    return DeadLetter(data, short_reason(reason), bounded(message.attributes), message_key(message))


def message_key(message: Message) -> str:
    """The dead-letter key of `message`: the same on every delivery of one bus message, so a
    redelivered batch stores its dead letters once.

    From the broker's message id where it has one (JetStream, Pub/Sub, memory, and the HTTP
    endpoint's request and position). Without one (MQTT) from the whole message, attributes
    and bytes (not the reason, which may name the time it was received): two messages
    identical in both are then one dead letter.
    """
    if message.id is not None:
        source = b"id\0" + message.id.encode("utf-8", "surrogatepass")
    else:
        attributes = repr(sorted(message.attributes.items())).encode("utf-8", "surrogatepass")
        source = b"content\0" + attributes + b"\0" + message.data
    return hashlib.blake2b(source, digest_size=16).hexdigest()


def bare(letter: DeadLetter, reason: str) -> DeadLetter:
    """A dead letter the database took without complaint: the first 64 KiB of its bytes, no
    attributes (the last resort when it refused the letter itself), the same key."""
    return DeadLetter(letter.data[: 64 * 1024], short_reason(reason), None, letter.key)


def short_reason(reason: str) -> str:
    text = reason.encode("ascii", "backslashreplace").decode("ascii")
    return text if len(text) <= MAX_REASON_CHARS else text[: MAX_REASON_CHARS - 3] + "..."


def bounded(attributes: Mapping[str, str] | None) -> Mapping[str, str] | None:
    """`attributes` as they are if they are small (the usual case), else cut to size: long
    keys and values shortened, attributes past MAX_ATTRIBUTES_BYTES dropped and counted."""
    if not attributes:
        return None
    try:
        size = len(orjson.dumps(dict(attributes)))
    except orjson.JSONEncodeError:  # a lone surrogate: not text any database stores
        attributes = {_clean(k): _clean(v) for k, v in attributes.items()}
        size = len(orjson.dumps(attributes))
    if size <= MAX_ATTRIBUTES_BYTES:
        return attributes
    kept: dict[str, str] = {}
    size = 2
    for key, value in attributes.items():
        pair = {_cut(key, MAX_KEY_CHARS): _cut(value, MAX_VALUE_CHARS)}
        cost = len(orjson.dumps(pair))
        if size + cost > MAX_ATTRIBUTES_BYTES - 64:
            kept[DROPPED] = f"{len(attributes) - len(kept)} attributes too long to keep"
            break
        kept.update(pair)
        size += cost
    return kept


def _clean(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit:,} more characters)"
