"""Response models of the API (they document /docs and shape every answer)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class DeviceCount(BaseModel):
    device_id: str = Field(examples=["6b4fa32e-a7f5-4ec2-8820-6581468ef36b"])
    count: int = Field(examples=[86400])


class DeviceMax(BaseModel):
    device_id: str = Field(examples=["6b4fa32e-a7f5-4ec2-8820-6581468ef36b"])
    max_temperature: float | None = Field(examples=[24.31])


class Device(BaseModel):
    device_id: str
    name: str | None
    latitude: float
    longitude: float
    first_seen: datetime
    last_seen: datetime
    count: int
    max_temperature: float | None
    last_temperature: float | None
    last_ts: datetime | None


class ReadingOut(BaseModel):
    device_id: str
    ts: datetime
    temperature: float
    latitude: float
    longitude: float
    seq: int | None
    is_anomaly: bool | None
    anomaly_score: float | None
    detector: str | None


class DeviceAnomalies(BaseModel):
    device_id: str
    count: int
    readings: list[ReadingOut]


class ReadingsPage(BaseModel):
    items: list[ReadingOut]
    next_after: datetime | None = Field(
        description="Pass as `after` to get the next page; null on the last page."
    )


class Health(BaseModel):
    status: str
    checks: dict[str, str] = Field(default_factory=dict)
