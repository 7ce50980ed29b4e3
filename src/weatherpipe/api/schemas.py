"""Response models of the API (they document /docs and shape every answer)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

DEVICE = "6b4fa32e-a7f5-4ec2-8820-6581468ef36b"
# What a flag says it is (the detectors' contract, detect/base.py); null on unflagged readings.
Kind = Literal["spike", "dip", "shift", "drift", "stuck", "noise", "gap", "range"]
Severity = Literal["low", "medium", "high"]
KIND = "The anomaly's kind; null unless the reading starts an anomaly."
SEVERITY = "How bad the anomaly is; null unless the reading starts an anomaly."


class DeviceCount(BaseModel):
    device_id: str = Field(examples=["6b4fa32e-a7f5-4ec2-8820-6581468ef36b"])
    name: str | None = Field(
        default=None, description="The device's name in the registry.", examples=["Greenhouse"]
    )
    count: int = Field(examples=[86400])


class DeviceMax(BaseModel):
    device_id: str = Field(examples=["6b4fa32e-a7f5-4ec2-8820-6581468ef36b"])
    name: str | None = Field(
        default=None, description="The device's name in the registry.", examples=["Greenhouse"]
    )
    max_temperature: float | None = Field(examples=[24.31])


class Device(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "device_id": DEVICE,
                    "name": "Berlin",
                    "latitude": 52.52,
                    "longitude": 13.405,
                    "first_seen": "2026-11-27T00:00:00Z",
                    "last_seen": "2026-11-28T01:02:03.456Z",
                    "count": 90123,
                    "max_temperature": 24.31,
                    "last_temperature": 7.82,
                    "last_ts": "2026-11-28T01:02:03.456Z",
                    "detection": "monitoring",
                    "false_alarms_per_day": None,
                }
            ]
        }
    )

    device_id: str = Field(description="The device's id (a UUID or a readable id).")
    name: str | None = Field(description="Display name from the registry, if it has one.")
    latitude: float | None = Field(
        description="Registered place, or the place of its last reading; null if neither."
    )
    longitude: float | None
    first_seen: datetime | None = Field(
        description="Time of its oldest reading (UTC); null for a device provisioned ahead."
    )
    last_seen: datetime | None = Field(description="Time of its newest reading (UTC).")
    description: str | None = Field(None, description="Free text from the registry.")
    tags: list[str] = Field(default_factory=list, description="Tags from the registry.")
    enabled: bool = Field(True, description="False: its readings are refused (dead letters).")
    count: int = Field(description="Readings stored.")
    max_temperature: float | None = Field(description="Highest temperature stored, °C.")
    last_temperature: float | None = Field(description="Temperature of the newest reading, °C.")
    last_ts: datetime | None = Field(description="Time of the newest reading.")
    detection: Literal["not_started", "warming_up", "monitoring"] = Field(
        description="Where the configured detector stands on the device: not started (no "
        "reading scored yet), warming up (learning the device; no flags yet) or monitoring."
    )
    false_alarms_per_day: float | None = Field(
        description="The device's own sensitivity (expected false alarms a day); null: the "
        "global setting."
    )


class ReadingOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "device_id": DEVICE,
                    "ts": "2026-11-28T01:02:03.456Z",
                    "temperature": 21.37,
                    "latitude": 52.52,
                    "longitude": 13.405,
                    "seq": 1234,
                    "is_anomaly": False,
                    "anomaly_score": 0.12,
                    "detector": "default",
                    "kind": None,
                    "severity": None,
                }
            ]
        }
    )

    device_id: str
    ts: datetime = Field(description="The sensor's clock, UTC.")
    temperature: float = Field(description="°C")
    latitude: float
    longitude: float
    seq: int | None = Field(description="The device's message counter, if it sends one.")
    is_anomaly: bool | None = Field(description="The detector's flag; null until scored.")
    anomaly_score: float | None
    detector: str | None = Field(description="Name of the detector that scored it.")
    kind: Kind | None = Field(description=KIND)
    severity: Severity | None = Field(description=SEVERITY)


class DeviceAnomalies(BaseModel):
    device_id: str = Field(examples=[DEVICE])
    name: str | None = Field(
        default=None, description="The device's name in the registry.", examples=["Greenhouse"]
    )
    count: int = Field(description="Anomalous readings in the window.", examples=[2])
    readings: list[ReadingOut] = Field(description="The anomalous readings, newest first.")


class SeriesPoint(BaseModel):
    ts: datetime = Field(description="Start of the bucket (or the reading's time for raw).")
    n: int = Field(description="Readings in the bucket.", examples=[60])
    t_min: float = Field(examples=[21.02])
    t_max: float = Field(examples=[21.6])
    t_mean: float = Field(examples=[21.3])


class SeriesAnomaly(BaseModel):
    ts: datetime = Field(
        description="The flagged reading's time; at minute, hour or day resolution the start of "
        "the bucket (the series point) its group belongs to."
    )
    count: int = Field(
        1,
        description="Flagged readings this mark stands for; past raw resolution a mark is "
        "the worst (highest severity, then score) of its bucket's flags.",
    )
    temperature: float
    anomaly_score: float | None
    detector: str | None
    kind: Kind | None = Field(description=KIND)
    severity: Severity | None = Field(description=SEVERITY)


class Series(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "device_id": DEVICE,
                    "resolution": "minute",
                    "start": "2026-11-27T01:00:00Z",
                    "end": "2026-11-28T01:00:00Z",
                    "points": [
                        {
                            "ts": "2026-11-27T01:00:00Z",
                            "n": 60,
                            "t_min": 6.9,
                            "t_max": 7.4,
                            "t_mean": 7.1,
                        }
                    ],
                    "anomalies": [
                        {
                            "ts": "2026-11-27T13:37:00Z",
                            "temperature": 31.5,
                            "anomaly_score": 0.99,
                            "detector": "default",
                            "kind": "spike",
                            "severity": "high",
                        }
                    ],
                }
            ]
        }
    )

    device_id: str
    resolution: Literal["raw", "minute", "hour", "day"]
    start: datetime
    end: datetime
    points: list[SeriesPoint]
    anomalies: list[SeriesAnomaly] = Field(description="Flagged readings in the range.")


class ReadingsPage(BaseModel):
    items: list[ReadingOut]
    next_after: datetime | None = Field(
        description="Pass as `after` to get the next page; null on the last page."
    )


class Health(BaseModel):
    status: str = Field(examples=["ok"])
    checks: dict[str, str] = Field(default_factory=dict, examples=[{"database": "ok", "bus": "ok"}])


class Problem(BaseModel):
    """Every error answer: one readable sentence, plus pydantic's details for a 422."""

    detail: str = Field(examples=["query.day: Input should be less than or equal to 31"])


class WorstFlag(BaseModel):
    kind: Kind | None = Field(description=KIND)
    severity: Severity | None = Field(description=SEVERITY)
    score: float | None = Field(description="The detector's score of that reading.")
    ts: datetime


class FleetDevice(BaseModel):
    device_id: str
    name: str | None = Field(description="The registry's name; null: show the id.")
    latitude: float | None
    longitude: float | None
    first_seen: datetime | None
    last_seen: datetime | None = Field(description="Time of its newest reading; null: never sent.")
    silence_seconds: float | None = Field(description="Seconds since its newest reading.")
    last_temperature: float | None = Field(description="Temperature of the newest reading, °C.")
    enabled: bool
    detection: Literal["not_started", "warming_up", "monitoring"]
    anomalies_30m: int = Field(description="Flagged readings in the last 30 minutes.")
    anomalies_24h: int = Field(description="Flagged readings in the last 24 hours.")
    worst_30m: WorstFlag | None = Field(
        description="The worst flag of the last 30 minutes: highest severity, then score."
    )
    worst_24h: WorstFlag | None = Field(description="The worst flag of the last 24 hours.")


class FleetTotals(BaseModel):
    devices: int
    reporting: int = Field(description="Devices with a reading in the last 5 minutes.")
    silent: int = Field(description="Devices that sent before, but nothing for 5 minutes.")
    never_seen: int = Field(description="Devices provisioned ahead that never sent.")
    not_started: int = Field(description="Devices the detector has not scored yet.")
    warming_up: int = Field(description="Devices the detector is still learning.")
    anomalous_30m: int = Field(description="Devices with a flag in the last 30 minutes.")
    anomalies_30m: int
    anomalies_24h: int


class DetectionProgress(BaseModel):
    detector: str
    devices: int = Field(description="Devices the detector keeps state for.")
    warming_up: int
    position: datetime | None = Field(description="Newest reading time the detector has seen.")
    oldest_position: datetime | None = Field(description="Position of the device furthest behind.")
    newest_reading: datetime | None = Field(description="Newest reading stored (any device).")
    behind_seconds: float | None = Field(description="newest_reading - position.")


class PipelineHealth(BaseModel):
    sampled_at: datetime
    ingest_rate: float | None = Field(
        description="Readings stored per second over the last minute of samples (the rate of "
        "weatherpipe_database_stored); null until two samples exist."
    )
    stored: int = Field(description="Readings in the database.")
    anomalies: int = Field(description="Flagged readings in the database.")
    dead_letters: int
    dead_letters_pending: int = Field(description="Dead letters not replayed yet.")
    lag: int | None = Field(description="Messages waiting for ingest on the bus; null: unknown.")
    lag_note: str = Field(description="Why the lag is unknown, if it is.")
    detection: DetectionProgress


class FleetPage(BaseModel):
    generated_at: datetime
    page: int
    per_page: int
    pages: int
    total: int = Field(description="Devices that match `q` (all of them without it).")
    q: str
    sort: Literal["name", "last_seen", "anomalies", "silence"]
    order: Literal["asc", "desc"]
    devices: list[FleetDevice]
    fleet: FleetTotals = Field(description="The whole fleet, whatever the page or search.")
    health: PipelineHealth
