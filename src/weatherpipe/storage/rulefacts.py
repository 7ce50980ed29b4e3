"""What alert rules look at: device names, silence, recent flags, temperatures beyond a line,
and how far ingest and detection lag."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Connection, and_, bindparam, func, literal, select

from weatherpipe.storage.database import Store
from weatherpipe.storage.detection import FLAGGED
from weatherpipe.storage.rows import aware, aware_or_none, naive_utc
from weatherpipe.storage.tables import detector_state, devices, readings


class RuleFacts(Protocol):
    """The facts the alerts stage evaluates its rules on."""

    def device_names(self, ids: Sequence[str]) -> dict[str, str | None]: ...

    def silent_devices(self, before: datetime) -> dict[str, datetime]: ...

    def flags_since(self, since: datetime) -> list[dict[str, Any]]: ...

    def latest_beyond(
        self, above: float | None, below: float | None
    ) -> dict[str, tuple[datetime, float]]: ...

    def temperature_windows(
        self, since: datetime
    ) -> dict[str, tuple[float, float, int, datetime | None]]: ...

    def ingest_lag(self) -> float | None: ...

    def detection_lags(self, detector: str) -> dict[str, float]: ...


class RuleFactStore(Store):
    def device_names(self, ids: Sequence[str]) -> dict[str, str | None]:
        """The display names of these devices (for notifications)."""
        query = select(devices.c.id, devices.c.name).where(
            devices.c.id.in_(bindparam("ids", expanding=True))
        )

        def work(conn: Connection) -> dict[str, str | None]:
            names: dict[str, str | None] = {}
            for first in range(0, len(ids), 500):  # a bounded IN list per statement
                rows = conn.execute(query, {"ids": list(ids[first : first + 500])}).all()
                names.update({d: name for d, name in rows})
            return names

        return self.db.run(work)

    def silent_devices(self, before: datetime) -> dict[str, datetime]:
        """Enabled devices whose newest reading is older than `before`, with its time."""
        query = select(devices.c.id, devices.c.last_seen).where(
            devices.c.enabled == literal(True), devices.c.last_seen < naive_utc(before)
        )
        rows = self.db.run(lambda conn: conn.execute(query).all())
        return {d: aware(seen) for d, seen in rows}

    def flags_since(self, since: datetime) -> list[dict[str, Any]]:
        """Flagged readings stamped at or after `since`, per device, kind and severity: how
        many, the newest time and the highest score (the (is_anomaly, ts) index finds them)."""
        r = readings.c
        query = (
            select(
                r.device_id,
                r.kind,
                r.severity,
                func.count().label("count"),
                func.max(r.ts).label("last_ts"),
                func.min(r.ts).label("first_ts"),
                func.max(r.anomaly_score).label("score"),
            )
            .where(r.is_anomaly == FLAGGED, r.ts >= naive_utc(since))
            .group_by(r.device_id, r.kind, r.severity)
        )
        return [
            {
                **row,
                "last_ts": aware(row["last_ts"]),
                "first_ts": aware(row["first_ts"]),
                "score": None if row["score"] is None else float(row["score"]),
            }
            for row in self.db.rows(query)[0]
        ]

    def latest_beyond(
        self, above: float | None, below: float | None
    ) -> dict[str, tuple[datetime, float]]:
        """Devices whose newest reading is above `above` (or below `below`): (ts, temperature),
        found through devices.last_seen and the (device_id, ts) key."""
        r = readings.c
        beyond = r.temperature > above if above is not None else r.temperature < below
        query = (
            select(devices.c.id, r.ts, r.temperature)
            .join_from(
                devices, readings, and_(r.device_id == devices.c.id, r.ts == devices.c.last_seen)
            )
            .where(beyond)
        )
        rows = self.db.run(lambda conn: conn.execute(query).all())
        return {d: (aware(ts), float(t)) for d, ts, t in rows}

    def temperature_windows(
        self, since: datetime
    ) -> dict[str, tuple[float, float, int, datetime | None]]:
        """Per device seen since `since`: lowest and highest temperature since then, how many
        readings, and the device's first reading time (a range scan of the (device_id, ts) key
        per device)."""
        r = readings.c
        first_seen = devices.c.first_seen
        query = (
            select(
                r.device_id,
                func.min(r.temperature),
                func.max(r.temperature),
                func.count(),
                first_seen,
            )
            .join_from(devices, readings, and_(r.device_id == devices.c.id, r.ts >= bindparam("s")))
            .where(devices.c.last_seen >= bindparam("s"))
            .group_by(r.device_id, first_seen)
        )
        rows = self.db.run(lambda conn: conn.execute(query, {"s": naive_utc(since)}).all())
        return {
            d: (float(lo), float(hi), int(n), aware_or_none(first)) for d, lo, hi, n, first in rows
        }

    def ingest_lag(self) -> float | None:
        """Seconds between the newest stored reading's sensor time and its storage."""
        query = (
            select(readings.c.ts, readings.c.received_at).order_by(readings.c.id.desc()).limit(1)
        )
        row = self.db.run(lambda conn: conn.execute(query).first())
        if row is None:
            return None
        return (aware(row[1]) - aware(row[0])).total_seconds()

    def detection_lags(self, detector: str) -> dict[str, float]:
        """Per device with detector state: seconds of readings the detector has not reached."""
        query = select(devices.c.id, devices.c.last_seen, detector_state.c.last_ts).join_from(
            devices,
            detector_state,
            and_(detector_state.c.device_id == devices.c.id, detector_state.c.detector == detector),
        )
        rows = self.db.run(lambda conn: conn.execute(query).all())
        return {
            d: max(0.0, (aware(seen) - aware(ts)).total_seconds())
            for d, seen, ts in rows
            if seen is not None
        }
