"""Per-device topics: which device a topic names under a pattern such as weather/+/telemetry."""

from __future__ import annotations

# The attribute a bus sets on a message from a per-device topic: the device the topic names.
TOPIC_DEVICE = "topic_device"


def topic_device(pattern: str, topic: str) -> str | None:
    """The level of `topic` at the pattern's `+` (None if the topic does not match)."""
    want, have = pattern.split("/"), topic.split("/")
    if len(want) != len(have):
        return None
    device = None
    for w, h in zip(want, have, strict=True):
        if w == "+":
            device = h
        elif w != h:
            return None
    return device
