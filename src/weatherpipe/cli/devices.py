"""The device registry's commands: devices add, list, show, rename, disable, enable, key."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer

from weatherpipe.cli.app import REDACT, DatabaseUrl, configure, devices_app
from weatherpipe.errors import ConfigError
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

DeviceArg = Annotated[str, typer.Argument(help="The device's id (a UUID or a readable id).")]
Json = Annotated[bool, typer.Option("--json", help="Answer as JSON.")]


@contextmanager
def _registry(database_url: str | None, must_exist: bool = False) -> Iterator[Repository]:
    from weatherpipe.compose import open_repository

    repo = open_repository(configure(database_url=database_url), must_exist=must_exist)
    try:
        yield repo
    except Refused as exc:
        raise ConfigError(f"devices: {exc}") from None
    finally:
        repo.close()


def _known(repo: Repository, device_id: str, **values: Any) -> None:
    if not repo.update_device(device_id, **values):
        raise ConfigError(f"devices: no device {device_id!r} (add it: weatherpipe devices add)")


@devices_app.command("add")
def devices_add(
    device_id: DeviceArg,
    name: Annotated[str | None, typer.Option(help="Display name, e.g. Greenhouse.")] = None,
    latitude: Annotated[
        float | None, typer.Option(help="Where it stands (with --longitude).")
    ] = None,
    longitude: Annotated[
        float | None, typer.Option(help="Where it stands (with --latitude).")
    ] = None,
    description: Annotated[str | None, typer.Option(help="Free text.")] = None,
    tag: Annotated[list[str] | None, typer.Option(help="A tag (repeat for more).")] = None,
    token: Annotated[
        bool, typer.Option("--token", help="Also make its HTTP token (printed once).")
    ] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Provision a device ahead of its first reading. With a place registered, its messages
    may leave out latitude and longitude."""
    with _registry(database_url) as repo:
        check_id(device_id)
        check_place(latitude, longitude)
        check_text("name", name, MAX_NAME)
        check_text("description", description, MAX_DESCRIPTION)
        tags = check_tags(tag or [])
        try:
            repo.add_device(device_id, name, latitude, longitude, description, tags)
        except DeviceExists:
            raise ConfigError(f"devices add: {device_id!r} is registered already") from None
        typer.echo(f"added {device_id}", err=True)
        if token:
            _issue_token(repo, device_id)


@devices_app.command("list")
def devices_list(as_json: Json = False, database_url: DatabaseUrl = None) -> None:
    """Every registered device: id, name, enabled, place, credentials."""
    with _registry(database_url, must_exist=True) as repo:
        entries = repo.registered()
    if as_json:
        typer.echo(json.dumps(entries, default=str, indent=2))
        return
    for e in entries:
        place = f"{e['latitude']:.4f},{e['longitude']:.4f}" if e["latitude"] is not None else "-"
        state = "enabled" if e["enabled"] else "DISABLED"
        creds = "+".join(
            k for k in ("token", "hmac") if e[f"has_{'hmac_key' if k == 'hmac' else k}"]
        )
        typer.echo(
            f"{e['device_id']:<40} {e['name'] or '-':<24} {state:<8} {place:<22} {creds or '-'}"
        )


@devices_app.command("show")
def devices_show(device_id: DeviceArg, database_url: DatabaseUrl = None) -> None:
    """One device's registry entry as JSON (never its token or key)."""
    with _registry(database_url, must_exist=True) as repo:
        entries = repo.registered(device_id)
    if not entries:
        raise ConfigError(f"devices show: no device {device_id!r}")
    typer.echo(json.dumps(entries[0], default=str, indent=2))


@devices_app.command("rename")
def devices_rename(
    device_id: DeviceArg,
    name: Annotated[str, typer.Argument(help="The new display name.")],
    database_url: DatabaseUrl = None,
) -> None:
    """Give a device a display name (shown by the API and the dashboard)."""
    with _registry(database_url) as repo:
        check_text("name", name, MAX_NAME)
        _known(repo, device_id, name=name)
    typer.echo(f"{device_id}: named {name!r}", err=True)


@devices_app.command("disable")
def devices_disable(device_id: DeviceArg, database_url: DatabaseUrl = None) -> None:
    """Refuse a device's readings from now on: ingest and HTTP dead-letter them with the
    reason (within 2 seconds)."""
    with _registry(database_url) as repo:
        _known(repo, device_id, enabled=False)
    typer.echo(f"{device_id}: disabled", err=True)


@devices_app.command("enable")
def devices_enable(device_id: DeviceArg, database_url: DatabaseUrl = None) -> None:
    """Accept a disabled device's readings again."""
    with _registry(database_url) as repo:
        _known(repo, device_id, enabled=True)
    typer.echo(f"{device_id}: enabled", err=True)


@devices_app.command("key")
def devices_key(
    device_id: DeviceArg,
    hmac: Annotated[
        bool, typer.Option("--hmac", help="Make an HMAC signing key instead of a token.")
    ] = False,
    revoke: Annotated[bool, typer.Option("--revoke", help="Remove the credential.")] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Make a device's HTTP token (or, with --hmac, its signing key) and print it once on
    stdout; an older one stops working. The registry keeps only the token's sha256."""
    with _registry(database_url) as repo:
        column = "hmac_key" if hmac else "token_hash"
        if revoke:
            _known(repo, device_id, **{column: None})
            typer.echo(f"{device_id}: {'HMAC key' if hmac else 'token'} revoked", err=True)
        elif hmac:
            key = new_hmac_key()
            REDACT.add(key)
            _known(repo, device_id, hmac_key=key)
            typer.echo(key)
        else:
            _issue_token(repo, device_id)


def _issue_token(repo: Repository, device_id: str) -> None:
    token = new_token()
    REDACT.add(token)  # never in a log line; printed here, once, on purpose
    _known(repo, device_id, token_hash=token_hash(token))
    typer.echo(token)
    typer.echo(f"{device_id}: new token (shown once; send it as Authorization: Bearer)", err=True)
