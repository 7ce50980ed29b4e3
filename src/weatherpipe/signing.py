"""Message authenticity: per-device HMAC-SHA256 keys, signing by sensors, checking by ingest.

The key file (WEATHERPIPE_DEVICE_KEYS) holds one `DEVICE_ID KEY` per line, KEY in hex (at least
16 bytes, i.e. 32 hex digits); blank lines and `#` comments are ignored. A device may be listed
more than once while its key is rotated: sensors sign with the last key listed, ingest accepts
any listed key. A signed message carries two attributes (NATS headers, MQTT user properties,
Pub/Sub attributes): `signature` = `sha256=` + the hex HMAC-SHA256 of the exact body bytes, and
`key_id` = the device whose key signed it. The key is always chosen by the body's own
`device_id`, so a device cannot sign readings in another device's name.

Key material never leaves this module: errors name the line number, never the line.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Protocol

import orjson

from weatherpipe.bus.base import Message
from weatherpipe.bus.topics import TOPIC_DEVICE
from weatherpipe.errors import ConfigError

log = logging.getLogger(__name__)

SIGNATURE = "signature"
KEY_ID = "key_id"
SCHEME = "sha256="
MIN_KEY_BYTES = 16


class DeviceKeys:
    """The keys of every known device; its repr and str never show a key."""

    def __init__(self, keys: Mapping[str, list[bytes]]) -> None:
        self._keys = {device: list(values) for device, values in keys.items() if values}

    @classmethod
    def load(cls, path: str | Path) -> DeviceKeys:
        """Read a key file; ConfigError names the variable and line, never the key."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                f"WEATHERPIPE_DEVICE_KEYS: cannot read {path}: {exc.strerror}"
            ) from None
        keys: dict[str, list[bytes]] = {}
        for number, line in enumerate(text.splitlines(), start=1):
            entry = line.split("#", 1)[0].split()
            if not entry:
                continue
            device, key = _parse_line(entry, path, number)
            keys.setdefault(device, []).append(key)
        if not keys:
            raise ConfigError(f"WEATHERPIPE_DEVICE_KEYS: {path} holds no keys")
        log.info("loaded keys of %d devices from %s", len(keys), path)
        return cls(keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"DeviceKeys({len(self._keys)} devices)"

    __str__ = __repr__

    def signing_key(self, device_id: str) -> bytes | None:
        keys = self._keys.get(device_id)
        return keys[-1] if keys else None

    def keys_of(self, device_id: str) -> list[bytes]:
        return self._keys.get(device_id, [])


def _parse_line(entry: list[str], path: str | Path, number: int) -> tuple[str, bytes]:
    where = f"WEATHERPIPE_DEVICE_KEYS: {path} line {number}"
    if len(entry) != 2:
        raise ConfigError(f"{where}: expected `DEVICE_ID KEY` (two fields)")
    device, key_hex = entry
    try:
        key = bytes.fromhex(key_hex)
    except ValueError:
        raise ConfigError(f"{where}: the key is not hex") from None
    if len(key) < MIN_KEY_BYTES:
        raise ConfigError(f"{where}: the key is shorter than {MIN_KEY_BYTES} bytes")
    return device, key


def signature(key: bytes, body: bytes) -> str:
    """The `signature` attribute value of `body` under `key`."""
    return SCHEME + hmac.new(key, body, hashlib.sha256).hexdigest()


def new_key() -> str:
    """A fresh random key in the file's encoding (32 bytes, hex)."""
    return secrets.token_hex(32)


def key_file_lines(device_ids: Iterable[str]) -> list[str]:
    """`DEVICE_ID KEY` lines with fresh keys, for `weatherpipe keys new`."""
    return [f"{device_id} {new_key()}" for device_id in device_ids]


class Signer:
    """Signs a device's message body (the SensorRunner `signer` hook)."""

    def __init__(self, keys: DeviceKeys) -> None:
        self.keys = keys
        self._unkeyed: set[str] = set()

    def __call__(self, device_id: str, body: bytes) -> dict[str, str] | None:
        key = self.keys.signing_key(device_id)
        if key is None:
            if device_id not in self._unkeyed:
                self._unkeyed.add(device_id)
                log.warning("no key for device %s: its readings go out unsigned", device_id)
            return None
        return {SIGNATURE: signature(key, body), KEY_ID: device_id}


class Verifier:
    """Refuses messages that are unsigned or not signed by their own device's key.

    Returns the reason for the dead letter, or None when the signature is good (the IngestWorker
    `verifier` hook).
    """

    def __init__(self, keys: DeviceKeys) -> None:
        self.keys = keys

    def __call__(self, message: Message) -> str | None:
        attributes = message.attributes or {}
        claimed = attributes.get(SIGNATURE)
        if not claimed:
            return "unsigned: no signature attribute (device keys are configured)"
        device_id = _body_device_id(message.data)
        if device_id is None:
            return "signature cannot be checked: the body names no device_id"
        keys = self.keys.keys_of(device_id)
        if not keys:
            return f"signature cannot be checked: no key for device {device_id[:64]!r}"
        key_id = attributes.get(KEY_ID)
        if key_id is not None and key_id != device_id:
            return f"signed with the key of {key_id[:64]!r}, not of the body's device {device_id!r}"
        given = claimed.encode("utf-8", "surrogateescape")
        if any(hmac.compare_digest(signature(key, message.data).encode(), given) for key in keys):
            return None
        return f"forged: signature does not match the key of device {device_id!r}"


def _body_device_id(data: bytes) -> str | None:
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    device_id = body.get("device_id") if isinstance(body, dict) else None
    return device_id if isinstance(device_id, str) else None


class KeyDirectory(Protocol):
    """The registry's HMAC keys as ingest sees them (ingest.admission.Admission)."""

    keyed: bool

    def hmac_key(self, device_id: str) -> str | None: ...


class RegistryVerifier:
    """Checks a message against its device's key in the registry (`weatherpipe devices key ID
    --hmac`): a device with one must sign with it. A device without one is left to the key
    file's Verifier when there is one (which refuses any unsigned message), else accepted."""

    def __init__(self, registry: KeyDirectory, fallback: Verifier | None = None) -> None:
        self.registry = registry
        self.fallback = fallback

    def __call__(self, message: Message) -> str | None:
        if not self.registry.keyed:  # no device has a key: no body is parsed for one
            return self.fallback(message) if self.fallback else None
        device_id = message.attributes.get(TOPIC_DEVICE) or _body_device_id(message.data)
        key_hex = self.registry.hmac_key(device_id) if device_id else None
        if key_hex is None:
            return self.fallback(message) if self.fallback else None
        claimed = (message.attributes or {}).get(SIGNATURE)
        if not claimed:
            return f"unsigned: device {device_id!r} has an HMAC key in the registry"
        given = claimed.encode("utf-8", "surrogateescape")
        if hmac.compare_digest(signature(bytes.fromhex(key_hex), message.data).encode(), given):
            return None
        return f"forged: signature does not match the registry key of device {device_id!r}"
