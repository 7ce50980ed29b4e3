"""The device registry: devices provisioned ahead, named, placed, tagged, disabled, given
credentials; and the snapshot ingest checks readings against."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Connection, insert, select, update

from weatherpipe.storage.database import Store
from weatherpipe.storage.rows import aware
from weatherpipe.storage.tables import devices

# What `devices show`/`list` and the admin API answer; never the token hash or the key.
_PUBLIC = (
    devices.c.id,
    devices.c.name,
    devices.c.description,
    devices.c.tags,
    devices.c.latitude,
    devices.c.longitude,
    devices.c.enabled,
    devices.c.first_seen,
    devices.c.last_seen,
    devices.c.false_alarms_per_day,
    (devices.c.token_hash.is_not(None)).label("has_token"),
    (devices.c.hmac_key.is_not(None)).label("has_hmac_key"),
)


@dataclass(frozen=True, slots=True)
class Entry:
    """What ingest needs of a registered device."""

    enabled: bool
    latitude: float | None
    longitude: float | None
    has_token: bool = False
    hmac_key: str | None = None  # hex


class DeviceDirectory(Protocol):
    """What ingest and the HTTP telemetry endpoint read of the registry."""

    def directory(self) -> dict[str, Entry]: ...

    def device_of_token(self, token_hash: str) -> tuple[str, bool] | None: ...


class DeviceExists(ValueError):
    """A device with that id is registered already."""


class RegistryStore(Store):
    def add_device(
        self,
        device_id: str,
        name: str | None = None,
        latitude: float | None = None,
        longitude: float | None = None,
        description: str | None = None,
        tags: Sequence[str] = (),
    ) -> None:
        """Provision a device ahead of its first reading; DeviceExists if it is there."""

        def work(conn: Connection) -> None:
            if conn.execute(select(devices.c.id).where(devices.c.id == device_id)).first():
                raise DeviceExists(device_id)
            conn.execute(
                insert(devices).values(
                    id=device_id,
                    name=name,
                    latitude=latitude,
                    longitude=longitude,
                    description=description,
                    tags=join_tags(tags),
                    enabled=True,
                )
            )

        self.db.run(work)

    def registered(self, device_id: str | None = None) -> list[dict[str, Any]]:
        """Every device's registry entry (or the one `device_id`), ordered by id."""
        query = select(*_PUBLIC).order_by(devices.c.id)
        if device_id is not None:
            query = query.where(devices.c.id == device_id)
        return [_entry(row) for row in self.db.rows(query)[0]]

    def update_device(self, device_id: str, **values: Any) -> bool:
        """Set registry columns (name, description, tags, latitude, longitude, enabled,
        token_hash, hmac_key) of one device; False when there is no such device."""
        if "tags" in values:
            values["tags"] = join_tags(values["tags"])
        query = update(devices).where(devices.c.id == device_id).values(**values)
        return bool(self.db.run(lambda conn: conn.execute(query).rowcount))

    def directory(self) -> dict[str, Entry]:
        """Every device's enabled flag, place, and HMAC key, by id (one query)."""
        query = select(
            devices.c.id,
            devices.c.enabled,
            devices.c.latitude,
            devices.c.longitude,
            devices.c.token_hash.is_not(None),
            devices.c.hmac_key,
        )
        rows = self.db.run(lambda conn: conn.execute(query).all())
        return {
            id_: Entry(bool(enabled), lat, lon, bool(token), key)
            for id_, enabled, lat, lon, token, key in rows
        }

    def device_of_token(self, token_hash: str) -> tuple[str, bool] | None:
        """(device id, enabled) of the device whose token hashes to `token_hash`."""
        query = select(devices.c.id, devices.c.enabled).where(devices.c.token_hash == token_hash)
        row = self.db.run(lambda conn: conn.execute(query).first())
        return (row[0], bool(row[1])) if row is not None else None

    def hmac_keys(self) -> dict[str, str]:
        """The HMAC keys (hex) of every device that has one."""
        query = select(devices.c.id, devices.c.hmac_key).where(devices.c.hmac_key.is_not(None))
        return {id_: key for id_, key in self.db.run(lambda conn: conn.execute(query).all())}


def join_tags(tags: Sequence[str] | None) -> str | None:
    """Tags as stored: distinct, sorted, comma-separated; None for none."""
    cleaned = sorted({t.strip() for t in tags or () if t.strip()})
    return ",".join(cleaned) or None


def _entry(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    out["device_id"] = out.pop("id")
    out["tags"] = out["tags"].split(",") if out["tags"] else []
    out["enabled"] = bool(out["enabled"])
    out["has_token"] = bool(out["has_token"])
    out["has_hmac_key"] = bool(out["has_hmac_key"])
    for key in ("first_seen", "last_seen"):
        out[key] = aware(out[key]) if out[key] is not None else None
    return out
