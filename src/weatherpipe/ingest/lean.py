"""The lean form of a reading, completed into the wire's full form (schema v1).

Devices on HTTP or on their own MQTT topic may send just `{"temperature": 21.4}`: the device
comes from the token or the topic, `v` is 1, `ts` is the time received. Completing is all this
does; the decoder then judges the result as it judges every message.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from weatherpipe.bus.topics import TOPIC_DEVICE
from weatherpipe.errors import DecodeError
from weatherpipe.reading import SCHEMA_VERSION, format_ts

__all__ = ["TOPIC_DEVICE", "complete", "complete_item"]


def complete_item(item: Any, device: str | None, received: datetime) -> Any:
    """`item` with v, device_id (if `device`) and ts filled in where missing; anything but a
    JSON object is left for the decoder to refuse. DecodeError if it names another device."""
    if not isinstance(item, dict):
        return item
    named = item.get("device_id", device)
    if device is not None and named != device:
        raise DecodeError(f"the reading names device {str(named)[:64]!r}, its sender is {device!r}")
    full = {"v": SCHEMA_VERSION, **item}
    if device is not None:
        full["device_id"] = device
    full.setdefault("ts", format_ts(received))
    return full


def complete(data: bytes, device: str, received: datetime) -> bytes:
    """A per-device topic's message body in full form (the body as it is if it is not a JSON
    object: the decoder says why)."""
    try:
        item = orjson.loads(data)
    except orjson.JSONDecodeError:
        return data
    if not isinstance(item, dict):
        return data
    return orjson.dumps(complete_item(item, device, received))
