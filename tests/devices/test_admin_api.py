"""The admin API and the reading's JSON Schema, in-process (TestClient) on every database."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from weatherpipe.compose import make_api
from weatherpipe.config import load_settings
from weatherpipe.reading import DEVICE_ID
from weatherpipe.storage.repository import Repository


def client_for(repo: Repository, token: str | None) -> TestClient:
    settings = load_settings(database_url=str(repo.engine.url), api_token=token)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return TestClient(make_api(settings, repo), headers=headers)


@pytest.fixture
def admin(repo: Repository) -> Iterator[TestClient]:
    with client_for(repo, "admin-token-1234") as client:
        yield client


def test_the_admin_api_is_closed_without_an_api_token(repo: Repository) -> None:
    with client_for(repo, None) as client:
        answer = client.get("/api/v1/admin/devices")
    assert answer.status_code == 403
    assert "WEATHERPIPE_API_TOKEN" in answer.json()["detail"]


def test_provision_change_disable_and_credentials(admin: TestClient, repo: Repository) -> None:
    made = admin.post(
        "/api/v1/admin/devices",
        json={
            "device_id": "shed-3",
            "name": "Shed",
            "latitude": 1.5,
            "longitude": 2.5,
            "tags": ["b", "a", "a"],
        },
    )
    assert made.status_code == 201, made.text
    assert made.json()["tags"] == ["a", "b"]
    assert admin.post("/api/v1/admin/devices", json={"device_id": "shed-3"}).status_code == 409
    bad = admin.post("/api/v1/admin/devices", json={"device_id": "Shed 3"})
    assert bad.status_code == 422 and "neither a canonical UUID" in bad.json()["detail"]
    changed = admin.patch(
        "/api/v1/admin/devices/shed-3", json={"name": "Big shed", "enabled": False}
    )
    assert (changed.json()["name"], changed.json()["enabled"]) == ("Big shed", False)
    token = admin.post("/api/v1/admin/devices/shed-3/token").json()["token"]
    key = admin.post("/api/v1/admin/devices/shed-3/hmac-key").json()["hmac_key"]
    entry = admin.get("/api/v1/admin/devices/shed-3").json()
    assert entry["has_token"] and entry["has_hmac_key"]
    assert token not in str(entry) and key not in str(entry)
    assert admin.delete("/api/v1/admin/devices/shed-3/token").status_code == 204
    assert admin.get("/api/v1/admin/devices/shed-3").json()["has_token"] is False
    assert admin.get("/api/v1/admin/devices/nobody").status_code == 404
    listed = admin.get("/api/v1/devices").json()
    assert [d["name"] for d in listed if d["device_id"] == "shed-3"] == ["Big shed"]


def test_the_reading_schema_is_public_and_says_what_the_decoder_does(admin: TestClient) -> None:
    schema = TestClient(admin.app).get("/api/v1/schema/reading.json").json()
    reading = schema["$defs"]["reading"]
    assert reading["required"] == ["temperature"]
    assert (
        re.compile(reading["properties"]["device_id"]["pattern"]).pattern
        == f"^{DEVICE_ID.pattern}$"
    )
    assert reading["properties"]["temperature"]["minimum"] == -273.15
