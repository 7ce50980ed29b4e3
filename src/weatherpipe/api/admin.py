"""The registry's admin API under /api/v1/admin/devices: provision, name, place, disable,
credentials. It answers only when WEATHERPIPE_API_TOKEN is set (and then only to that token)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, Field

from weatherpipe.api.routes import ERRORS
from weatherpipe.errors import Conflict, Forbidden, InvalidParameter, NotFound
from weatherpipe.provision import (
    MAX_DESCRIPTION,
    MAX_NAME,
    Refused,
    check_id,
    check_place,
    check_tags,
    check_text,
    new_hmac_key,
    new_token,
    token_hash,
)
from weatherpipe.storage.registry import DeviceExists
from weatherpipe.storage.repository import Repository


def _admin_only(request: Request) -> None:
    # With a token set, the guard middleware has already checked it; without one, the
    # registry's credentials would be open to anyone who reaches the port.
    if not request.app.state.api_token:
        raise Forbidden(
            "the admin API needs WEATHERPIPE_API_TOKEN set on the server "
            "(or use `weatherpipe devices`)"
        )


router = APIRouter(
    prefix="/api/v1/admin/devices",
    tags=["admin"],
    dependencies=[Depends(_admin_only)],
    responses={**ERRORS, 403: ERRORS[401] | {"description": "No API token is configured."}},
)
DevicePath = Annotated[str, Path(description="The device's id.", max_length=64)]


class Registered(BaseModel):
    device_id: str
    name: str | None
    description: str | None
    tags: list[str]
    latitude: float | None
    longitude: float | None
    enabled: bool
    first_seen: Any
    last_seen: Any
    false_alarms_per_day: float | None
    has_token: bool
    has_hmac_key: bool


class NewDevice(BaseModel):
    device_id: str = Field(examples=["greenhouse-01"])
    name: str | None = Field(None, max_length=MAX_NAME)
    latitude: float | None = None
    longitude: float | None = None
    description: str | None = Field(None, max_length=MAX_DESCRIPTION)
    tags: list[str] = Field(default_factory=list)
    token: bool = Field(False, description="Also make its HTTP token (in the answer, once).")


class Changes(BaseModel):
    name: str | None = Field(None, max_length=MAX_NAME)
    latitude: float | None = None
    longitude: float | None = None
    description: str | None = Field(None, max_length=MAX_DESCRIPTION)
    tags: list[str] | None = None
    enabled: bool | None = None


class Credential(BaseModel):
    device_id: str
    token: str | None = Field(None, description="Shown once; only its sha256 is kept.")
    hmac_key: str | None = Field(None, description="Hex; sign message bodies with it.")


def _repo(request: Request) -> Repository:
    repo: Repository = request.app.state.repo
    return repo


async def _entry(repo: Repository, device_id: str) -> dict[str, Any]:
    entries = await asyncio.to_thread(repo.registered, device_id)
    if not entries:
        raise NotFound(f"no device {device_id!r}")
    return entries[0]


async def _update(repo: Repository, device_id: str, **values: Any) -> None:
    if not await asyncio.to_thread(lambda: repo.update_device(device_id, **values)):
        raise NotFound(f"no device {device_id!r}")


@router.get("", response_model=list[Registered])
async def list_devices(request: Request) -> list[dict[str, Any]]:
    """Every registered device (never a token or key)."""
    return await asyncio.to_thread(_repo(request).registered)


@router.post("", status_code=201, response_model=Registered | Credential)
async def add_device(request: Request, device: NewDevice) -> dict[str, Any]:
    """Provision a device; with `token: true` the answer is its token (shown once)."""
    repo = _repo(request)
    try:
        check_id(device.device_id)
        check_place(device.latitude, device.longitude)
        tags = check_tags(device.tags)
    except Refused as exc:
        raise InvalidParameter(str(exc)) from None
    args = (device.device_id, device.name, device.latitude, device.longitude)
    try:
        await asyncio.to_thread(repo.add_device, *args, device.description, tags)
    except DeviceExists:
        raise Conflict(f"device {device.device_id!r} is registered already") from None
    if device.token:
        return await _new_token(repo, device.device_id)
    return await _entry(repo, device.device_id)


@router.get("/{device_id}", response_model=Registered)
async def show_device(request: Request, device_id: DevicePath) -> dict[str, Any]:
    return await _entry(_repo(request), device_id)


@router.patch("/{device_id}", response_model=Registered)
async def change_device(request: Request, device_id: DevicePath, changes: Changes) -> Any:
    """Rename, re-place, re-tag, describe, disable (`enabled: false`) or enable a device."""
    values = changes.model_dump(exclude_unset=True)
    try:
        if "latitude" in values or "longitude" in values:
            check_place(values.get("latitude"), values.get("longitude"))
        if values.get("tags") is not None:
            values["tags"] = check_tags(values["tags"])
        check_text("name", values.get("name"), MAX_NAME)
    except Refused as exc:
        raise InvalidParameter(str(exc)) from None
    if values.get("enabled", True) is None:
        raise InvalidParameter("enabled must be true or false")
    repo = _repo(request)
    if values:
        await _update(repo, device_id, **values)
    return await _entry(repo, device_id)


@router.post("/{device_id}/token", response_model=Credential)
async def make_token(request: Request, device_id: DevicePath) -> dict[str, Any]:
    """A new HTTP token for the device (the old one stops working), shown once."""
    return await _new_token(_repo(request), device_id)


@router.post("/{device_id}/hmac-key", response_model=Credential)
async def make_hmac_key(request: Request, device_id: DevicePath) -> dict[str, Any]:
    """A new HMAC signing key for the device's bus messages."""
    key = new_hmac_key()
    await _update(_repo(request), device_id, hmac_key=key)
    return {"device_id": device_id, "hmac_key": key}


@router.delete("/{device_id}/token", status_code=204)
async def revoke_token(request: Request, device_id: DevicePath) -> None:
    await _update(_repo(request), device_id, token_hash=None)


async def _new_token(repo: Repository, device_id: str) -> dict[str, Any]:
    token = new_token()
    await _update(repo, device_id, token_hash=token_hash(token))
    return {"device_id": device_id, "token": token}
