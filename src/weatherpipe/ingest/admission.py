"""Which decoded readings the registry admits: none of a disabled device, and each with a
place (its own, or the registered one when the message named none)."""

from __future__ import annotations

import logging
import time

from weatherpipe.reading import Reading
from weatherpipe.storage.registry import DeviceDirectory, Entry

log = logging.getLogger(__name__)
# How old the registry snapshot may grow: a device disabled or given a place is seen by ingest
# within this many seconds.
REFRESH_SECONDS = 2.0


class Admission:
    """A snapshot of the registry (refreshed every REFRESH_SECONDS) and the rules it applies."""

    def __init__(self, registry: DeviceDirectory | None, refresh_seconds: float = REFRESH_SECONDS):
        self.registry = registry
        self.refresh_seconds = refresh_seconds
        self._entries: dict[str, Entry] = {}
        self._disabled: frozenset[str] = frozenset()
        self.keyed = False  # whether any device has an HMAC key (else nothing to verify)
        self._loaded = -float("inf")

    @property
    def stale(self) -> bool:
        return self.registry is not None and time.monotonic() - self._loaded >= self.refresh_seconds

    @property
    def age(self) -> float:
        """Seconds since the last refresh."""
        return time.monotonic() - self._loaded

    def refresh(self) -> None:
        """Read the registry again (a blocking query: call it in a thread)."""
        if self.registry is None:
            return
        entries = self.registry.directory()
        self._entries = entries
        self._disabled = frozenset(d for d, e in entries.items() if not e.enabled)
        self.keyed = any(e.hmac_key is not None for e in entries.values())
        self._loaded = time.monotonic()

    def hmac_key(self, device_id: str) -> str | None:
        """The device's HMAC key (hex) in the registry, as of the last refresh."""
        entry = self._entries.get(device_id)
        return entry.hmac_key if entry is not None else None

    def entry(self, device_id: str) -> Entry | None:
        """The device's registry entry as of the last refresh."""
        return self._entries.get(device_id)

    def admit(self, readings: list[Reading]) -> list[Reading | str]:
        """Each reading, given its registered place if it had none, or why it is refused."""
        disabled = self._disabled
        out: list[Reading | str] = []
        for r in readings:
            if r.device_id in disabled:
                out.append(f"device {r.device_id!r} is disabled in the registry")
            elif r.latitude is None:
                out.append(self._placed(r))
            else:
                out.append(r)
        return out

    def _placed(self, reading: Reading) -> Reading | str:
        entry = self._entries.get(reading.device_id)
        if entry is None or entry.latitude is None or entry.longitude is None:
            return (
                f"no place: the message has no latitude/longitude and device "
                f"{reading.device_id!r} has no registered location "
                "(send both, or register it: weatherpipe devices add ID --latitude --longitude)"
            )
        return reading._replace(latitude=entry.latitude, longitude=entry.longitude)
