"""POST /api/v1/telemetry against a running `weatherpipe api` (uvicorn, a free port), with
curl and httpx as devices would use it; the admin API provisions the devices."""

from __future__ import annotations

import sqlite3
import subprocess
import time
from pathlib import Path

import httpx

from tests.devices.conftest import API_TOKEN, BURST, Api


def curl(api: Api, body: str, *headers: str) -> tuple[int, str]:
    args = ["curl", "-sS", "-o", "-", "-w", "\n%{http_code}", "-X", "POST"]
    if not any(h.lower().startswith("content-type:") for h in headers):
        args += ["-H", "Content-Type: application/json"]
    args += ["--data-binary", body]
    for header in headers:
        args += ["-H", header]
    done = subprocess.run(
        [*args, f"{api.url}/api/v1/telemetry"], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    text, _, status = done.stdout.rpartition("\n")
    return int(status), text


def test_curl_with_only_a_token_gets_a_named_devices_reading_stored(api: Api) -> None:
    token = api.token_of("greenhouse-01", name="Greenhouse", latitude=52.5, longitude=13.4)
    status, text = curl(
        api, '{"device_id": "greenhouse-01", "temperature": 21.4}', f"Authorization: Bearer {token}"
    )
    assert status == 202, text
    assert '"stored":1' in text
    devices = api.admin.get("/api/v1/devices").json()
    (device,) = [d for d in devices if d["device_id"] == "greenhouse-01"]
    assert device["name"] == "Greenhouse"
    assert (device["latitude"], device["longitude"]) == (52.5, 13.4)  # from the registry
    assert device["count"] == 1
    # The analyses name it too.
    for path in ("/api/v1/stats/counts", "/api/v1/stats/max-temperature"):
        rows = {r["device_id"]: r for r in api.admin.get(path).json()}
        assert rows["greenhouse-01"]["name"] == "Greenhouse", path


def test_a_retried_reading_is_stored_once(api: Api) -> None:
    token = api.token_of("retry-1", latitude=1.0, longitude=2.0)
    body = '{"temperature": 20.0, "ts": "2026-11-28T10:00:00.000Z", "seq": 7}'
    first = curl(api, body, f"X-Device-Token: {token}")
    again = curl(api, body, f"X-Device-Token: {token}")
    assert first[0] == again[0] == 202
    assert '"stored":1' in first[1] and '"duplicates":1' in again[1]
    assert api.count("retry-1") == 1


def test_a_batch_of_100_with_httpx(api: Api) -> None:
    token = api.token_of("batch-1")
    batch = [
        {
            "temperature": 15.0 + i / 10,
            "ts": f"2026-11-28T11:00:{i // 10:02d}.{i % 10}00Z",
            "latitude": 48.1,
            "longitude": 11.6,
        }
        for i in range(100)
    ]
    with httpx.Client(base_url=api.url, headers={"Authorization": f"Bearer {token}"}) as device:
        first = device.post("/api/v1/telemetry", json=batch)
        again = device.post("/api/v1/telemetry", json=batch)
    assert first.status_code == 202, first.text
    assert (first.json()["stored"], first.json()["duplicates"]) == (100, 0)
    assert (again.json()["stored"], again.json()["duplicates"]) == (0, 100)
    assert api.count("batch-1") == 100


def test_bad_readings_in_a_batch_are_dead_lettered_with_reasons(api: Api) -> None:
    token = api.token_of("mixed-1", latitude=0.0, longitude=0.0)
    batch = [
        {"temperature": 1.0, "ts": "2026-11-28T12:00:00Z"},
        {"temperature": "hot"},
        7,
        {"temperature": -300.0},
        {"temperature": 2.0, "latitude": 10.0},
        {"temperature": 3.0, "ts": "2999-01-01T00:00:00Z"},
        {"temperature": 4.0, "x": "A" * 70_000},
    ]
    before = len(api.dead_letters())
    answer = httpx.post(
        f"{api.url}/api/v1/telemetry", json=batch, headers={"X-Device-Token": token}
    )
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert (body["stored"], body["dead_lettered"]) == (1, 6)
    reasons = {r["index"]: r["reason"] for r in body["refused"]}
    assert "temperature must be a number" in reasons[1]
    assert "expected a JSON object" in reasons[2]
    assert "below absolute zero" in reasons[3]
    assert "latitude without longitude" in reasons[4]
    assert "too far ahead" in reasons[5]
    assert "over the 65536-byte limit" in reasons[6]
    letters = api.dead_letters()[before:]
    assert sorted(reason for _, reason in letters) == sorted(reasons.values())


def test_dead_letters_are_keyed_per_request_and_position(api: Api) -> None:
    """Two equal bad items, and the same request sent again: four dead letters, four keys
    (the server cannot tell a client's retry from a second message; docs/reliability.md)."""
    token = api.token_of("keyed-1", latitude=0.0, longitude=0.0)
    before = len(api.dead_letters())
    for _ in range(2):
        answer = httpx.post(
            f"{api.url}/api/v1/telemetry",
            json=[7, 7, {"temperature": 1.0}],
            headers={"X-Device-Token": token},
        )
        assert answer.json()["dead_lettered"] == 2, answer.text
    with sqlite3.connect(api.db) as conn:
        keys = [k for (k,) in conn.execute("SELECT message_key FROM dead_letters ORDER BY id")]
    assert len(keys) == before + 4 and len(set(keys[before:])) == 4 and None not in keys


def test_credentials_are_checked(api: Api) -> None:
    mine = api.token_of("auth-1", latitude=0.0, longitude=0.0)
    api.token_of("auth-2", latitude=0.0, longitude=0.0)
    lean = '{"device_id": "auth-2", "temperature": 1.0}'
    assert curl(api, lean)[0] == 401
    assert curl(api, lean, "Authorization: Bearer wpd_wrong")[0] == 401
    status, text = curl(api, lean, f"Authorization: Bearer {mine}")
    assert status == 401 and "a reading names 'auth-2'" in text
    assert api.count("auth-2") == 0
    # The API token is a gateway's: it may post for any device.
    assert curl(api, lean, f"Authorization: Bearer {API_TOKEN}")[0] == 202


def test_limits_give_400_413_and_429(api: Api, tmp_path: Path) -> None:
    token = api.token_of("limits-1", latitude=0.0, longitude=0.0)
    auth = f"Authorization: Bearer {token}"
    status, text = curl(api, "{not json", auth)
    assert status == 400 and "not valid UTF-8 JSON" in text
    assert curl(api, "[]", auth)[0] == 400
    big = tmp_path / "big.json"
    big.write_text("[" + ",".join(['{"temperature": 1.0}'] * 20_000) + "]")
    status, text = curl(api, f"@{big}", auth)
    assert status == 413 and "byte limit" in text
    burst = [
        {"temperature": 1.0, "ts": f"2026-11-28T13:{i // 60:02d}:{i % 60:02d}Z"}
        for i in range(BURST)
    ]
    headers = {"Authorization": f"Bearer {token}"}
    assert httpx.post(f"{api.url}/api/v1/telemetry", json=burst, headers=headers).status_code == 202
    over = httpx.post(f"{api.url}/api/v1/telemetry", json=burst[:50], headers=headers)
    assert over.status_code == 429, over.text
    assert 1 <= int(over.headers["Retry-After"]) <= 2  # 50 readings at 50/s: 1 s, rounded up
    assert "over the rate of 50 readings/s per device" in over.json()["detail"]
    # Another device's bucket is its own: the gateway token posts for it at once.
    gateway = {"Authorization": f"Bearer {API_TOKEN}"}
    other = [{**r, "device_id": "limits-2", "latitude": 0.0, "longitude": 0.0} for r in burst[:5]]
    assert httpx.post(f"{api.url}/api/v1/telemetry", json=other, headers=gateway).status_code == 202
    # A batch bigger than the burst could never pass: 413 (no Retry-After), not 429.
    huge = [{**r, "device_id": "limits-3", "latitude": 0.0, "longitude": 0.0} for r in burst]
    huge.append({**huge[0], "ts": "2026-11-28T14:00:00Z"})
    too_big = httpx.post(f"{api.url}/api/v1/telemetry", json=huge, headers=gateway)
    assert too_big.status_code == 413 and "Retry-After" not in too_big.headers
    assert f"over its burst of {BURST}" in too_big.json()["detail"]
    assert api.count("limits-3") == 0


def test_disabled_and_placeless_devices_are_dead_lettered(api: Api) -> None:
    token = api.token_of("nowhere-1")
    status, text = curl(api, '{"temperature": 5.0}', f"Authorization: Bearer {token}")
    assert status == 400 and "no registered location" in text
    off = api.token_of("off-1", latitude=1.0, longitude=1.0)
    assert (
        api.admin.patch("/api/v1/admin/devices/off-1", json={"enabled": False}).json()["enabled"]
        is False
    )
    deadline = time.monotonic() + 10  # the registry snapshot is at most 2 s old
    while True:
        status, text = curl(api, '{"temperature": 5.0}', f"Authorization: Bearer {off}")
        if status == 400:
            break
        assert time.monotonic() < deadline, text
        time.sleep(0.2)
    assert "is disabled in the registry" in text
    assert api.count("off-1") <= 1  # at most one got in before the snapshot saw the change
    assert "is disabled" in api.dead_letters()[-1][1]


def test_a_telegraf_line_protocol_body(api: Api) -> None:
    api.token_of("lp-1", latitude=52.5, longitude=13.4)
    body = (
        "weather,device_id=lp-1,host=pi temperature=21.5,latitude=52.5,longitude=13.4 "
        "1764291723456000000\n"
        "weather,device_id=lp-1 temperature=21.6 1764291724456789000\n"
        'weather,device_id=lp-1 temperature="hot" 1764291725000000000\n'
        "garbage\n"
    )
    status, text = curl(api, body, f"Authorization: Bearer {API_TOKEN}", "Content-Type: text/plain")
    assert status == 202, text
    assert '"stored":2' in text and '"dead_lettered":2' in text
    assert "line 3: temperature" in text and "is not a number" in text
    assert "line 4: expected `measurement[,tags] fields [timestamp]`" in text
    with sqlite3.connect(api.db) as conn:
        stamps = [r[0] for r in conn.execute("SELECT ts FROM readings WHERE device_id = 'lp-1'")]
    assert sorted(stamps) == ["2025-11-28 01:02:03.456000", "2025-11-28 01:02:04.456000"]
    letters = api.dead_letters()[-2:]
    assert {data for data, _ in letters} == {
        b'weather,device_id=lp-1 temperature="hot" 1764291725000000000',
        b"garbage",
    }


def test_concurrent_single_readings_are_each_answered_after_their_commit(api: Api) -> None:
    """32 requests in flight share transactions (group commit): every answer comes after its
    own reading is in the database, and two copies of one key in flight are stored once."""
    import asyncio

    api.token_of("group-1", latitude=1.0, longitude=1.0)
    headers = {"Authorization": f"Bearer {API_TOKEN}"}
    bodies = [
        {"device_id": "group-1", "temperature": 10.0 + i, "ts": f"2026-11-28T14:00:{i:02d}Z"}
        for i in range(32)
    ]
    bodies.append(dict(bodies[7]))  # a retry sent while the first copy is in flight

    async def post(client: httpx.AsyncClient, body: dict[str, object]) -> tuple[int, int, bool]:
        answer = await client.post("/api/v1/telemetry", json=body, headers=headers)
        assert answer.status_code == 202, answer.text
        with sqlite3.connect(api.db) as conn:
            query = "SELECT COUNT(*) FROM readings WHERE device_id = 'group-1' AND ts LIKE ?"
            there = conn.execute(query, (f"2026-11-28 14:00:{str(body['ts'])[17:19]}%",))
            stored_already = there.fetchone()[0] == 1
        return answer.json()["stored"], answer.json()["duplicates"], stored_already

    async def everything() -> list[tuple[int, int, bool]]:
        limits = httpx.Limits(max_connections=40, max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=api.url, limits=limits, timeout=30) as client:
            return await asyncio.gather(*(post(client, b) for b in bodies))

    answers = asyncio.run(everything())
    assert all(there for _, _, there in answers)
    assert sum(s for s, _, _ in answers) == 32
    assert sum(d for _, d, _ in answers) == 1
    assert sorted((answers[7][0], answers[32][0])) == [0, 1]
    assert api.count("group-1") == 32


def test_a_device_without_a_clock_can_take_the_time_from_any_answer(api: Api) -> None:
    """docs/devices.md's retry pattern: a device sets its clock from the Date header once."""
    from email.utils import parsedate_to_datetime

    answer = httpx.get(f"{api.url}/healthz")
    stamp = parsedate_to_datetime(answer.headers["Date"])
    assert abs(stamp.timestamp() - time.time()) < 60
