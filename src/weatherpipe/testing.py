"""Test doubles users need too: a reading factory and a check for a server that may be absent."""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime, timedelta

from weatherpipe.reading import Reading

BASE_TIME = datetime(2026, 11, 28, 0, 0, tzinfo=UTC)
DEVICE_A = "6b4fa32e-a7f5-4ec2-8820-6581468ef36b"
DEVICE_B = "2f8d9b1a-3c4e-4f60-8a7b-9c0d1e2f3a4b"


def make_reading(
    device_id: str = DEVICE_A,
    seconds: float = 0.0,
    temperature: float = 20.0,
    *,
    start: datetime = BASE_TIME,
    seq: int | None = None,
) -> Reading:
    """A valid reading `seconds` after `start` (1 Hz series are easy to build with a loop)."""
    return Reading(device_id, start + timedelta(seconds=seconds), temperature, 52.52, 13.405, seq)


def series(
    values: list[float], device_id: str = DEVICE_A, start: datetime = BASE_TIME
) -> list[Reading]:
    """One reading per second with the given temperatures."""
    return [make_reading(device_id, i, v, start=start, seq=i) for i, v in enumerate(values)]


def port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    """Whether something accepts TCP connections at host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def server_missing(name: str, host: str, port: int) -> str | None:
    """Why a test of `name` cannot run, or None if the server answers.

    Under CI=true a missing server is a failure, not a skip: the caller raises it.
    """
    if port_open(host, port):
        return None
    return f"{name} is not answering on {host}:{port}"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")
