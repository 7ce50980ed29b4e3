"""Provisioning devices: the checks on what a person registers, and fresh credentials.

A device token is a random bearer secret (`wpd_` and 43 URL-safe characters) shown once when it
is made; the registry keeps only its sha256. An HMAC key (32 random bytes, hex) is kept as it
is, since ingest needs it to check signatures; both are replaced by making new ones.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence

from weatherpipe.reading import is_device_id

TOKEN_PREFIX = "wpd_"
MAX_NAME = 100
MAX_DESCRIPTION = 500
MAX_TAGS = 500


class Refused(ValueError):
    """What a person asked to register is not valid; the message says why."""


def new_token() -> str:
    """A fresh device token (about 256 random bits)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """What the registry keeps of a token: its sha256, hex."""
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def new_hmac_key() -> str:
    """A fresh HMAC-SHA256 key, hex (32 bytes)."""
    return secrets.token_hex(32)


def check_id(device_id: str) -> str:
    if not is_device_id(device_id):
        raise Refused(
            f"device id {device_id[:80]!r} is neither a canonical UUID (lower-case) nor a "
            "readable id (1-64 of a-z 0-9 . _ -, starting with a letter or digit)"
        )
    return device_id


def check_place(latitude: float | None, longitude: float | None) -> None:
    if (latitude is None) != (longitude is None):
        raise Refused("give both latitude and longitude, or neither")
    if latitude is not None and not -90.0 <= latitude <= 90.0:
        raise Refused(f"latitude {latitude} is outside [-90, 90]")
    if longitude is not None and not -180.0 <= longitude <= 180.0:
        raise Refused(f"longitude {longitude} is outside [-180, 180]")


def check_text(what: str, value: str | None, limit: int) -> None:
    if value is not None and len(value) > limit:
        raise Refused(f"{what} is longer than {limit} characters")


def check_tags(tags: Sequence[str]) -> list[str]:
    cleaned = sorted({t.strip() for t in tags if t.strip()})
    for tag in cleaned:
        if "," in tag:
            raise Refused(f"tag {tag[:40]!r} holds a comma")
    check_text("tags", ",".join(cleaned), MAX_TAGS)
    return cleaned
