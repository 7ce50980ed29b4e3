"""Read-only alerts endpoints: incidents and the delivery log (behind the API token, if set)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from weatherpipe.api.routes import ERRORS, repo_of

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"], responses=ERRORS)
Limit = Annotated[int, Query(ge=1, le=1000, description="The newest this many.")]


class Incident(BaseModel):
    id: int
    rule: str = Field(examples=["too-hot"])
    device_id: str = Field(description='The device; "" for a fleet-wide rule (lag).')
    started_at: datetime
    resolved_at: datetime | None = Field(description="null while the incident is open.")
    summary: str = Field(examples=["36.20 °C is above 35 °C"])


class DeliveryAttempt(BaseModel):
    attempt: int
    at: datetime
    ok: bool
    http_status: int | None = Field(description="null when the receiver did not answer.")
    error: str | None
    seconds: float


class Delivery(BaseModel):
    id: int
    rule: str
    receiver: str
    status: str = Field(description="firing, resolved or test.", examples=["firing"])
    created_at: datetime
    state: str = Field(description="pending, delivered or failed.", examples=["delivered"])
    attempts: int
    next_attempt_at: datetime
    delivered_at: datetime | None
    last_error: str | None
    attempt_log: list[DeliveryAttempt]


@router.get("/incidents", response_model=list[Incident])
def incidents(request: Request, limit: Limit = 100) -> list[dict[str, Any]]:
    """The newest alert incidents, open and resolved."""
    return repo_of(request).incidents(limit)


@router.get("/log", response_model=list[Delivery])
def delivery_log(request: Request, limit: Limit = 50) -> list[dict[str, Any]]:
    """The newest notifications with every delivery attempt (the `weatherpipe alerts log`)."""
    return repo_of(request).delivery_log(limit)
