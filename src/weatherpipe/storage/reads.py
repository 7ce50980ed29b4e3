"""What the API, the dashboard and `status` read: devices, readings, series, the analyses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Connection, and_, func, literal, select

from weatherpipe.storage.analyses import ANALYSES
from weatherpipe.storage.database import Store
from weatherpipe.storage.rows import (
    aware_or_none,
    detection_state,
    float_or_none,
    naive_utc,
    plain,
)
from weatherpipe.storage.tables import (
    dead_letters,
    detector_state,
    devices,
    readings,
    readings_daily,
)
from weatherpipe.storage.tables import readings_minute as minutes

# `is_anomaly = 1` (not `IS TRUE`) so MySQL can use the (is_anomaly, ts) index.
FLAGGED = literal(True)
# What a reader of readings gets: every column but the ingest bookkeeping (received_at).
READING_COLUMNS = [c for c in readings.c if c.key != "received_at"]


class Reads(Protocol):
    """What the API reads."""

    def analysis(self, name: str, **params: Any) -> list[dict[str, Any]]: ...

    def devices(self, detector: str = "default") -> list[dict[str, Any]]: ...

    def anomalous_readings(
        self, since: datetime, device_id: str | None = None, limit: int = 1000
    ) -> list[dict[str, Any]]: ...

    def readings_page(
        self,
        device_id: str,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 1000,
        after: datetime | None = None,
    ) -> list[dict[str, Any]]: ...

    def chart(
        self, device_id: str, start: datetime, end: datetime, resolution: str, marks: int = 500
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]: ...

    def totals(self) -> dict[str, int]: ...


class ReadStore(Store):
    def analysis(self, name: str, **params: Any) -> list[dict[str, Any]]:
        """Run one of the four original analyses (see storage/analyses.py)."""
        query = ANALYSES[name]
        values = {k: params.get(k) for k in query.params}
        if "since" in values and values["since"] is not None:
            values["since"] = naive_utc(values["since"])
        statement = query.statement(self.dialect)
        rows = self.db.run(lambda conn: conn.execute(statement, values).mappings().all())
        return [plain(row) for row in rows]

    def devices(self, detector: str = "default") -> list[dict[str, Any]]:
        """Every device with count, maximum (from daily rollups), last reading and where
        `detector` stands on it (`detection`), in one query.

        The last reading is found through devices.last_seen, an index point lookup per device,
        so the answer costs the same at 3 devices or 3,000 and at any number of readings.
        """
        totals = (
            select(
                readings_daily.c.device_id,
                func.sum(readings_daily.c.n).label("n"),
                func.max(readings_daily.c.t_max).label("t_max"),
            )
            .group_by(readings_daily.c.device_id)
            .subquery()
        )
        query = (
            select(
                devices,
                totals.c.n,
                totals.c.t_max,
                readings.c.ts.label("last_ts"),
                readings.c.temperature.label("last_temperature"),
                detector_state.c.device_id.label("detected"),
                detector_state.c.warming_up,
            )
            .outerjoin(totals, totals.c.device_id == devices.c.id)
            .outerjoin(
                detector_state,
                and_(
                    detector_state.c.device_id == devices.c.id,
                    detector_state.c.detector == detector,
                ),
            )
            .outerjoin(
                readings,
                and_(readings.c.device_id == devices.c.id, readings.c.ts == devices.c.last_seen),
            )
            .order_by(devices.c.id)
        )
        return [
            {
                "device_id": row["id"],
                "name": row["name"],
                "latitude": row["latitude"],
                "longitude": row["longitude"],
                "first_seen": aware_or_none(row["first_seen"]),
                "last_seen": aware_or_none(row["last_seen"]),
                "description": row["description"],
                "tags": row["tags"].split(",") if row["tags"] else [],
                "enabled": bool(row["enabled"]),
                "count": int(row["n"] or 0),
                "max_temperature": row["t_max"],
                "last_temperature": row["last_temperature"],
                "last_ts": aware_or_none(row["last_ts"]),
                "detection": detection_state(row["detected"], row["warming_up"]),
                "false_alarms_per_day": float_or_none(row["false_alarms_per_day"]),
            }
            for row in self.db.run(lambda conn: conn.execute(query).mappings().all())
        ]

    def anomalous_readings(
        self, since: datetime, device_id: str | None = None, limit: int = 1000
    ) -> list[dict[str, Any]]:
        query = (
            select(*self.db.dialect.text_columns(READING_COLUMNS))
            .where(readings.c.is_anomaly == FLAGGED, readings.c.ts >= naive_utc(since))
            .order_by(readings.c.ts.desc())
            .limit(limit)
        )
        if device_id is not None:
            query = query.where(readings.c.device_id == device_id)
        return self.db.rows(query)[0]

    def readings_page(
        self,
        device_id: str,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 1000,
        after: datetime | None = None,
    ) -> list[dict[str, Any]]:
        """A device's readings in time order, `limit` at a time; page on with `after`."""
        conditions = [readings.c.device_id == device_id]
        if start is not None:
            conditions.append(readings.c.ts >= naive_utc(start))
        if end is not None:
            conditions.append(readings.c.ts < naive_utc(end))
        if after is not None:
            conditions.append(readings.c.ts > naive_utc(after))
        query = (
            select(*self.db.dialect.text_columns(READING_COLUMNS))
            .where(and_(*conditions))
            .order_by(readings.c.ts)
            .limit(limit)
        )
        return self.db.rows(query)[0]

    def chart(
        self, device_id: str, start: datetime, end: datetime, resolution: str, marks: int = 500
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """A device's temperature from `start` to `end` as points of `ts, n, t_min, t_max,
        t_mean` (raw readings, minute rollups, hours folded from them, or daily rollups: every
        bucket that overlaps the range) and its flagged readings there (the chart marks them),
        read in one transaction: the first `marks` of them."""
        points, flagged = self.db.rows(
            self._series_query(device_id, start, end, resolution),
            self._anomalies_query(device_id, start, end, marks),
        )
        return _points(points), flagged

    def totals(self) -> dict[str, int]:
        def work(conn: Connection) -> dict[str, int]:
            stored = conn.execute(select(func.coalesce(func.sum(readings_daily.c.n), 0))).scalar()
            dead = conn.execute(select(func.count()).select_from(dead_letters)).scalar()
            flagged = conn.execute(
                select(func.count()).select_from(readings).where(readings.c.is_anomaly == FLAGGED)
            ).scalar()
            return {
                "stored": int(stored or 0),
                "dead_letters": int(dead or 0),
                "anomalies": int(flagged or 0),
            }

        return self.db.run(work)

    def _series_query(self, device_id: str, start: datetime, end: datetime, resolution: str) -> Any:
        lo, hi = naive_utc(start), naive_utc(end)
        text_columns = self.db.dialect.text_columns
        if resolution == "raw":
            r = readings.c
            query = select(
                *text_columns([r.ts]),
                literal(1).label("n"),
                r.temperature.label("t_min"),
                r.temperature.label("t_max"),
                r.temperature.label("t_mean"),
            ).where(r.device_id == device_id, r.ts >= lo, r.ts < hi)
            return query.order_by(r.ts)
        if resolution == "minute":
            m = minutes.c
            query = select(
                *text_columns([m.minute]), m.n, m.t_min, m.t_max, (m.t_sum / m.n).label("t_mean")
            ).where(
                m.device_id == device_id,
                m.minute >= lo.replace(second=0, microsecond=0),
                m.minute < hi,
            )
            return query.order_by(m.minute)
        if resolution == "hour":
            return self._hourly(device_id, lo, hi)
        d = readings_daily.c
        query = select(
            d.day.label("ts"), d.n, d.t_min, d.t_max, (d.t_sum / d.n).label("t_mean")
        ).where(
            d.device_id == device_id,
            d.day >= lo.date(),
            d.day <= (hi - timedelta(microseconds=1)).date(),
        )
        return query.order_by(d.day)

    def _hourly(self, device_id: str, lo: datetime, hi: datetime) -> Any:
        """Hours folded from the minute rollups inside the database (a week is 168 rows out)."""
        m = minutes.c
        hour = self.db.dialect.hour(m.minute)
        return (
            select(
                hour.label("ts"),
                func.sum(m.n).label("n"),
                func.min(m.t_min).label("t_min"),
                func.max(m.t_max).label("t_max"),
                (func.sum(m.t_sum) / func.sum(m.n)).label("t_mean"),
            )
            .where(
                m.device_id == device_id,
                m.minute >= lo.replace(minute=0, second=0, microsecond=0),
                m.minute < hi,
            )
            .group_by(hour)
            .order_by(hour)
        )

    def _anomalies_query(self, device_id: str, start: datetime, end: datetime, limit: int) -> Any:
        r = readings.c
        return (
            select(
                *self.db.dialect.text_columns([r.ts]),
                r.temperature,
                r.anomaly_score,
                r.detector,
                r.kind,
                r.severity,
            )
            .where(
                r.is_anomaly == FLAGGED,
                r.ts >= naive_utc(start),
                r.ts < naive_utc(end),
                r.device_id == device_id,
            )
            .order_by(r.ts)
            .limit(limit)
        )


def _points(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Series rows with `ts` always an aware datetime (minute rows and days renamed)."""
    for row in rows:
        if "minute" in row:
            row["ts"] = row.pop("minute")
        elif not isinstance(row["ts"], datetime):  # a day: its midnight, UTC
            row["ts"] = datetime(row["ts"].year, row["ts"].month, row["ts"].day, tzinfo=UTC)
    return rows
