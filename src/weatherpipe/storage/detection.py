"""What detection reads and writes: settled readings per device, then scores, flags and each
detector's state, saved together; and the ground truth the simulator injected."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import Connection, bindparam, insert, literal, select, update

from weatherpipe.storage.database import Store
from weatherpipe.storage.rows import Detection, Row, Scored, aware, naive_utc
from weatherpipe.storage.tables import detector_state, devices, injected_anomalies, readings

# `is_anomaly = 1` (not `IS TRUE`) so MySQL can use the (is_anomaly, ts) index.
FLAGGED = literal(True)


class DetectionStorage(Protocol):
    """What the detection job needs of the database."""

    def detector_states(
        self, detector: str
    ) -> dict[str, tuple[datetime, str | bytes, float | None]]: ...

    def sensitivity_overrides(self) -> dict[str, float]: ...

    def devices_last_seen(self) -> dict[str, datetime]: ...

    def readings_after_many(
        self, cursors: Mapping[str, datetime | None], limit: int
    ) -> dict[str, list[Row]]: ...

    def save_detections(self, detector: str, passes: Sequence[Detection]) -> None: ...


class DetectionStore(Store):
    def device_ids(self) -> list[str]:
        return list(self.db.run(lambda conn: conn.execute(select(devices.c.id)).scalars().all()))

    def devices_last_seen(self) -> dict[str, datetime]:
        """Each device's newest reading time, in one query (the detector skips idle devices;
        a device provisioned ahead that has sent nothing is not among them)."""
        query = select(devices.c.id, devices.c.last_seen).where(devices.c.last_seen.is_not(None))
        rows = self.db.run(lambda conn: conn.execute(query).all())
        return {device_id: aware(last_seen) for device_id, last_seen in rows}

    def detector_states(
        self, detector: str
    ) -> dict[str, tuple[datetime, str | bytes, float | None]]:
        """Each device's position, stored state (JSON text, or whatever an older version left)
        and the sensitivity that state was built with."""
        query = select(detector_state).where(detector_state.c.detector == detector)
        return {
            row["device_id"]: (
                aware(row["last_ts"]),
                row["state"],
                _number(row["false_alarms_per_day"]),
            )
            for row in self.db.run(lambda conn: conn.execute(query).mappings().all())
        }

    def sensitivity_overrides(self) -> dict[str, float]:
        """The devices with their own sensitivity (expected false alarms a day)."""
        query = select(devices.c.id, devices.c.false_alarms_per_day).where(
            devices.c.false_alarms_per_day.is_not(None)
        )
        return {d: float(v) for d, v in self.db.run(lambda conn: conn.execute(query).all())}

    def set_sensitivity(self, device_id: str, false_alarms_per_day: float | None) -> bool:
        """Set (or clear, with None) a device's sensitivity; False when there is no such device."""
        query = (
            update(devices)
            .where(devices.c.id == device_id)
            .values(false_alarms_per_day=false_alarms_per_day)
        )
        return bool(self.db.run(lambda conn: conn.execute(query).rowcount))

    def detector_positions(self) -> list[dict[str, Any]]:
        columns = (detector_state.c.device_id, detector_state.c.detector, detector_state.c.last_ts)
        return self.db.rows(select(*columns))[0]

    def readings_after(self, device_id: str, after: datetime | None, limit: int) -> list[Row]:
        """The next readings of a device for the detector, oldest first, with when each was
        stored: (id, ts, temperature, received_at)."""
        return self.readings_after_many({device_id: after}, limit)[device_id]

    def readings_after_many(
        self, cursors: Mapping[str, datetime | None], limit: int
    ) -> dict[str, list[Row]]:
        """readings_after for many devices (up to `limit` each) in one transaction."""
        columns = (readings.c.id, readings.c.ts, readings.c.temperature, readings.c.received_at)
        first = select(*columns).where(readings.c.device_id == bindparam("device"))
        later = first.where(readings.c.ts > bindparam("after"))
        first = first.order_by(readings.c.ts).limit(limit)
        later = later.order_by(readings.c.ts).limit(limit)

        def work(conn: Connection) -> dict[str, list[Row]]:
            out = {}
            for device, after in cursors.items():
                if after is None:
                    rows = conn.execute(first, {"device": device})
                else:
                    rows = conn.execute(later, {"device": device, "after": naive_utc(after)})
                out[device] = [(int(i), aware(ts), float(t), aware(r)) for i, ts, t, r in rows]
            return out

        return self.db.run(work)

    def save_detection(
        self,
        detector: str,
        device_id: str,
        last_ts: datetime,
        state: str,
        results: Sequence[Scored],
    ) -> None:
        """Write scores and flags and the detector's new state in one transaction (idempotent)."""
        self.save_detections(detector, [Detection(device_id, last_ts, state, results)])

    def save_detections(self, detector: str, passes: Sequence[Detection]) -> None:
        """save_detection for many devices, in one transaction."""
        now = naive_utc(datetime.now(UTC))
        results = [s for p in passes for s in p.results]
        states = [
            {
                "device_id": p.device_id,
                "detector": detector,
                "last_ts": naive_utc(p.last_ts),
                "state": p.state,
                "updated_at": now,
                "warming_up": p.warming_up,
                "false_alarms_per_day": p.false_alarms_per_day,
            }
            for p in passes
        ]
        dialect = self.db.dialect

        def work(conn: Connection) -> None:
            if results:
                dialect.write_scores(conn, detector, results)
            if states:
                conn.execute(dialect.state_upsert(), states)

        self.db.run(work)

    # -- ground truth of injected anomalies -------------------------------------------------------

    def record_injected(self, rows: Iterable[tuple[str, str, datetime, datetime]]) -> None:
        values = [
            {"device_id": d, "kind": k, "start_ts": naive_utc(s), "end_ts": naive_utc(e)}
            for d, k, s, e in rows
        ]
        if values:
            self.db.run(lambda conn: conn.execute(insert(injected_anomalies), values))

    def injected(self) -> list[dict[str, Any]]:
        return self.db.rows(select(injected_anomalies).order_by(injected_anomalies.c.start_ts))[0]

    def flagged(self, detector: str | None = None) -> list[tuple[str, datetime]]:
        query = select(readings.c.device_id, readings.c.ts).where(readings.c.is_anomaly == FLAGGED)
        if detector:
            query = query.where(readings.c.detector == detector)
        return [(d, aware(ts)) for d, ts in self.db.run(lambda conn: conn.execute(query).all())]


def _number(value: Any) -> float | None:
    """A nullable DOUBLE as a float (MySQL's driver hands over Decimal)."""
    return None if value is None else float(value)
