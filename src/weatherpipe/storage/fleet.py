"""What the fleet overview reads: one page of devices (searched, sorted) with their last
reading, anomalies and detection state, the fleet's totals, and where detection stands."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from sqlalchemy import Connection, Select, and_, case, func, literal, or_, select

from weatherpipe.storage.database import Store
from weatherpipe.storage.rows import (
    aware,
    aware_or_none,
    detection_state,
    float_or_none,
    naive_utc,
)
from weatherpipe.storage.tables import detector_state, devices, readings

# `is_anomaly = 1` (not `IS TRUE`) so MySQL can use the (is_anomaly, ts) index.
FLAGGED = literal(True)
Sort = Literal["name", "last_seen", "anomalies", "silence"]
Order = Literal["asc", "desc"]
SEVERITY_RANK = {"low": 1, "medium": 2, "high": 3}
# A device that sent nothing for this long counts as silent in the fleet's totals.
SILENT_AFTER = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class FleetQuery:
    """Which page of the fleet, found how and in what order."""

    page: int = 1
    per_page: int = 50
    q: str = ""
    sort: Sort = "name"
    order: Order = "asc"
    detector: str = "default"
    device_id: str | None = None  # only this device (the device page)


class FleetReads(Protocol):
    """What the fleet overview and its event stream read."""

    def fleet_page(self, query: FleetQuery, now: datetime) -> dict[str, Any]: ...

    def fleet_totals(self, detector: str, now: datetime) -> dict[str, int]: ...

    def detection_progress(self, detector: str) -> dict[str, Any]: ...


class FleetStore(Store):
    def fleet_page(self, query: FleetQuery, now: datetime) -> dict[str, Any]:
        """One page of devices and how many devices match, read in one transaction.

        The page's ids are sorted and cut from the devices table alone (with the last 24
        hours' flag counts when sorting by anomalies); every other figure (detection state,
        flag counts, last temperature, worst flag) is looked up for those ids only, so a page
        costs about the same at 3 devices or 10,000."""
        day, half_hour = naive_utc(now - timedelta(days=1)), naive_utc(now - timedelta(minutes=30))
        page = _page_ids(query, _flag_counts(day, half_hour))
        matching = select(func.count()).select_from(devices).where(_search(query))

        def work(conn: Connection) -> dict[str, Any]:
            ids = list(conn.execute(page).scalars())
            if not ids:
                return {"rows": [], "last": {}, "worst": [], "total": _count(conn, matching)}
            details = _details(ids, query.detector)
            found = {row["id"]: dict(row) for row in conn.execute(details).mappings()}
            return {
                "rows": [found[i] for i in ids],
                "last": _last_temperatures(conn, ids),
                "worst": _flagged_of(conn, ids, day),
                "total": _count(conn, matching),
            }

        found = self.db.run(work)
        return {"total": found["total"], "devices": _devices(found, naive_utc(now), half_hour)}

    def fleet_totals(self, detector: str, now: datetime) -> dict[str, int]:
        """The whole fleet's counts: devices reporting, silent, never seen, where detection
        stands on them, and their flags in the last 30 minutes and 24 hours."""
        day, half_hour = naive_utc(now - timedelta(days=1)), naive_utc(now - timedelta(minutes=30))
        flags = _flag_counts(day, half_hour)
        query = _totals(detector, flags, naive_utc(now - SILENT_AFTER))
        row = self.db.run(lambda conn: dict(conn.execute(query).mappings().one()))
        return {key: int(value or 0) for key, value in row.items()}

    def detection_progress(self, detector: str) -> dict[str, Any]:
        """Where `detector` stands: devices it has state for, how many still warm up, its
        newest and oldest position, and the newest reading stored (what it works towards)."""
        ds = detector_state.c
        query = select(
            func.count().label("devices"),
            func.sum(case((ds.warming_up == FLAGGED, 1), else_=0)).label("warming_up"),
            func.max(ds.last_ts).label("position"),
            func.min(ds.last_ts).label("oldest_position"),
        ).where(ds.detector == detector)
        newest = select(func.max(devices.c.last_seen))

        def work(conn: Connection) -> dict[str, Any]:
            row = dict(conn.execute(query).mappings().one())
            row["newest_reading"] = conn.execute(newest).scalar()
            return row

        row = self.db.run(work)
        return {
            "devices": int(row["devices"] or 0),
            "warming_up": int(row["warming_up"] or 0),
            "position": aware_or_none(row["position"]),
            "oldest_position": aware_or_none(row["oldest_position"]),
            "newest_reading": aware_or_none(row["newest_reading"]),
        }


def _flag_counts(day: datetime, half_hour: datetime) -> Any:
    """Flagged readings per device in the last 24 hours and the last 30 minutes (the
    (is_anomaly, ts) index finds them)."""
    r = readings.c
    return (
        select(
            r.device_id,
            func.count().label("day"),
            func.sum(case((r.ts >= half_hour, 1), else_=0)).label("half_hour"),
        )
        .where(r.is_anomaly == FLAGGED, r.ts >= day)
        .group_by(r.device_id)
        .subquery("flags")
    )


def _count(conn: Connection, query: Any) -> int:
    return int(conn.execute(query).scalar() or 0)


def _search(query: FleetQuery) -> Any:
    """Devices whose name or id contains `q`, ignoring case (`%` and `_` taken literally)."""
    if query.device_id is not None:
        return devices.c.id == query.device_id
    if not query.q:
        return literal(True)
    return or_(
        devices.c.name.icontains(query.q, autoescape=True),
        devices.c.id.icontains(query.q, autoescape=True),
    )


def _page_ids(query: FleetQuery, flags: Any) -> Select[Any]:
    """The ids of the page's devices, in the page's order (ties by id)."""
    d = devices.c
    never = case((d.last_seen.is_(None), 1), else_=0)  # devices that never sent go last
    keys: dict[str, list[Any]] = {
        "name": [func.lower(func.coalesce(d.name, d.id))],
        "last_seen": [never, d.last_seen],
        "anomalies": [func.coalesce(flags.c.half_hour, 0), func.coalesce(flags.c.day, 0)],
        "silence": [never, d.last_seen],
    }
    # Silence grows as last_seen falls: its ascending order is last_seen's descending.
    descending = (query.order == "desc") != (query.sort == "silence")
    order = [k.desc() if descending and k is not never else k for k in keys[query.sort]]
    ids = select(d.id).select_from(devices)
    if query.sort == "anomalies":
        ids = ids.outerjoin(flags, flags.c.device_id == d.id)
    return (
        ids.where(_search(query))
        .order_by(*order, d.id)
        .limit(query.per_page)
        .offset((query.page - 1) * query.per_page)
    )


def _details(ids: list[str], detector: str) -> Select[Any]:
    """What the page shows of each of `ids` from the devices table and its detector state
    (its flags come from `_flagged_of`)."""
    d, ds = devices.c, detector_state.c
    return (
        select(
            d.id,
            d.name,
            d.latitude,
            d.longitude,
            d.first_seen,
            d.last_seen,
            d.enabled,
            ds.device_id.label("detected"),
            ds.warming_up,
        )
        .outerjoin(detector_state, and_(ds.device_id == d.id, ds.detector == detector))
        .where(d.id.in_(ids))
    )


def _totals(detector: str, flags: Any, recent: datetime) -> Any:
    d, ds = devices.c, detector_state.c
    return (
        select(
            func.count().label("devices"),
            func.sum(case((d.last_seen >= recent, 1), else_=0)).label("reporting"),
            func.sum(case((d.last_seen < recent, 1), else_=0)).label("silent"),
            func.sum(case((d.last_seen.is_(None), 1), else_=0)).label("never_seen"),
            func.sum(case((ds.device_id.is_(None), 1), else_=0)).label("not_started"),
            func.sum(case((ds.warming_up == FLAGGED, 1), else_=0)).label("warming_up"),
            func.sum(case((flags.c.half_hour > 0, 1), else_=0)).label("anomalous_30m"),
            func.sum(flags.c.half_hour).label("anomalies_30m"),
            func.sum(flags.c.day).label("anomalies_24h"),
        )
        .select_from(devices)
        .outerjoin(flags, flags.c.device_id == d.id)
        .outerjoin(detector_state, and_(ds.device_id == d.id, ds.detector == detector))
    )


def _last_temperatures(conn: Connection, ids: list[str]) -> dict[str, float]:
    """The newest reading's temperature of each device on the page, found through
    devices.last_seen (a key lookup each)."""
    r = readings.c
    query = (
        select(r.device_id, r.temperature)
        .join(devices, and_(devices.c.id == r.device_id, devices.c.last_seen == r.ts))
        .where(devices.c.id.in_(ids))
    )
    return {device: float(t) for device, t in conn.execute(query)}


def _flagged_of(conn: Connection, ids: list[str], since: datetime) -> list[dict[str, Any]]:
    """The page's flagged readings since `since` (counted and their worst chosen in Python)."""
    r = readings.c
    query = select(r.device_id, r.ts, r.kind, r.severity, r.anomaly_score).where(
        r.is_anomaly == FLAGGED, r.ts >= since, r.device_id.in_(ids)
    )
    return [dict(row) for row in conn.execute(query).mappings()]


def _worst(flagged: list[dict[str, Any]], since: datetime) -> dict[str, Any] | None:
    """The worst flag since `since`: highest severity, then highest score, then newest."""
    chosen = [f for f in flagged if f["ts"] >= since]
    if not chosen:
        return None
    worst = max(
        chosen,
        key=lambda f: (SEVERITY_RANK.get(f["severity"] or "", 0), f["anomaly_score"] or 0, f["ts"]),
    )
    return {
        "kind": worst["kind"],
        "severity": worst["severity"],
        "score": None if worst["anomaly_score"] is None else float(worst["anomaly_score"]),
        "ts": aware(worst["ts"]),
    }


def _devices(found: dict[str, Any], now: datetime, half_hour: datetime) -> list[dict[str, Any]]:
    flagged: dict[str, list[dict[str, Any]]] = {}
    for flag in found["worst"]:
        flag["ts"] = naive_utc(flag["ts"])
        flagged.setdefault(flag["device_id"], []).append(flag)
    out = []
    for row in found["rows"]:
        last_seen = row["last_seen"]
        mine = flagged.get(row["id"], [])
        out.append(
            {
                "device_id": row["id"],
                "name": row["name"],
                "latitude": float_or_none(row["latitude"]),
                "longitude": float_or_none(row["longitude"]),
                "first_seen": aware_or_none(row["first_seen"]),
                "last_seen": aware_or_none(last_seen),
                "silence_seconds": None
                if last_seen is None
                else max(0.0, round((now - last_seen).total_seconds(), 3)),
                "last_temperature": found["last"].get(row["id"]),
                "enabled": bool(row["enabled"]),
                "detection": detection_state(row["detected"], row["warming_up"]),
                "anomalies_30m": sum(1 for f in mine if f["ts"] >= half_hour),
                "anomalies_24h": len(mine),
                "worst_30m": _worst(mine, half_hour),
                "worst_24h": _worst(mine, datetime.min),
            }
        )
    return out
