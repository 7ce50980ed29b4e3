"""The Telegraf configurations of docs/devices.md, checked by their payloads (Telegraf itself
is not run here: it is not in Debian's packages and no other registry is reachable).

Each test builds the body Telegraf sends for that configuration from Telegraf's documented
serializer output (line protocol; the JSON serializer's standard and batch forms with
`json_timestamp_units = "1ms"`), applies the configuration's own `json_transformation` with
JSONata 1.5.4 (the version Telegraf's serializer implements, run by the reference JavaScript
implementation, installed with npm once), and sends it as the configuration says: over HTTP to
a running `weatherpipe api`, or with mosquitto_pub to a running `weatherpipe ingest`.
"""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.devices.conftest import API_TOKEN, Api, npm_package
from tests.devices.test_mqtt_topics import env, ingest, publish, rows, until, weatherpipe

__all__ = ["env", "ingest"]  # fixtures of the MQTT tests, used here too

DOCS = Path(__file__).parents[2] / "docs" / "devices.md"
JSONATA_VERSION = "1.5.4"
EVALUATE = """
const jsonata = require(process.argv[1]);
let input = "";
process.stdin.on("data", (chunk) => { input += chunk; });
process.stdin.on("end", () => {
  const {expression, data} = JSON.parse(input);
  process.stdout.write(JSON.stringify(jsonata(expression).evaluate(data)));
});
"""
# 2025-11-28T01:02:03.456Z and one second later, as Telegraf's metrics would carry them.
STAMPS_MS = (1764291723456, 1764291724456)


def documented_config(heading: str) -> dict[str, Any]:
    """The TOML block under `heading` in docs/devices.md, parsed."""
    section = DOCS.read_text().split(heading + "\n", 1)[1]
    block = re.search(r"```toml\n(.*?)\n```", section, re.DOTALL)
    assert block, f"no ```toml block under {heading!r}"
    return tomllib.loads(block.group(1))


@pytest.fixture(scope="module")
def jsonata() -> Callable[[str, Any], Any]:
    module = npm_package("jsonata", JSONATA_VERSION) / "node_modules" / "jsonata"

    def evaluate(expression: str, data: Any) -> Any:
        done = subprocess.run(
            ["node", "-e", EVALUATE, str(module)],
            input=json.dumps({"expression": expression, "data": data}),
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    return evaluate


def metric(device: str, temperature: float | int, stamp_ms: int) -> dict[str, Any]:
    """One metric in the JSON serializer's standard form (json_timestamp_units = "1ms")."""
    return {
        "fields": {"temperature": temperature, "humidity": 41.5},
        "name": "weather",
        "tags": {"device": device, "host": "pi-4"},
        "timestamp": stamp_ms,
    }


def post(api: Api, config: dict[str, Any], body: bytes) -> httpx.Response:
    """POST as the configuration says, to the test's API (the token made the gateway's)."""
    assert config["method"] == "POST"
    assert config["url"].endswith("/api/v1/telemetry")
    headers = {
        name: value.replace("API_TOKEN", API_TOKEN) for name, value in config["headers"].items()
    }
    return httpx.post(f"{api.url}/api/v1/telemetry", content=body, headers=headers)


def test_outputs_http_with_influx_line_protocol(api: Api) -> None:
    (config,) = documented_config("### InfluxDB line protocol (Telegraf's `influx` format)")[
        "outputs"
    ]["http"]
    assert config["data_format"] == "influx"
    api.token_of("tg-lp-1", name="Telegraf LP", latitude=52.5, longitude=13.4)
    # Telegraf's influx serializer: tags sorted by key, an integer field with `i`, nanoseconds,
    # one metric per line ending in a newline.
    body = (
        f"weather,device_id=tg-lp-1,host=pi-4 humidity=41.5,temperature=21.4 {STAMPS_MS[0]}000000\n"
        f"weather,device_id=tg-lp-1,host=pi-4 humidity=42i,temperature=22i {STAMPS_MS[1]}000000\n"
    ).encode()
    answer = post(api, config, body)
    assert answer.status_code == 202, answer.text
    assert answer.json()["stored"] == 2
    # Telegraf's own default Content-Type, when the header is not configured.
    again = httpx.post(
        f"{api.url}/api/v1/telemetry",
        content=body,
        headers={
            "Content-Type": "text/plain; charset=utf-8",
            "Authorization": f"Bearer {API_TOKEN}",
        },
    )
    assert again.status_code == 202, again.text
    assert again.json()["duplicates"] == 2  # the same (device_id, ts): stored once
    page = api.admin.get("/api/v1/readings", params={"device_id": "tg-lp-1"}).json()
    assert [(r["ts"], r["temperature"]) for r in page["items"]] == [
        ("2025-11-28T01:02:03.456000Z", 21.4),
        ("2025-11-28T01:02:04.456000Z", 22.0),
    ]


def test_outputs_http_with_the_json_serializer_and_its_transformation(
    api: Api, jsonata: Callable[[str, Any], Any]
) -> None:
    (config,) = documented_config("### Telegraf `outputs.http` with JSON")["outputs"]["http"]
    assert (config["data_format"], config["json_timestamp_units"]) == ("json", "1ms")
    api.token_of("tg-json-1", name="Telegraf JSON", latitude=48.1, longitude=11.6)
    for metrics in (
        [metric("tg-json-1", 19.5, STAMPS_MS[0])],  # a batch of one: JSONata gives an object
        [metric("tg-json-1", 19.75, STAMPS_MS[1]), metric("tg-json-1", 20, STAMPS_MS[1] + 1000)],
    ):
        body = jsonata(config["json_transformation"], {"metrics": metrics})  # batch form
        answer = post(api, config, json.dumps(body).encode())
        assert answer.status_code == 202, answer.text
        assert answer.json()["stored"] == len(metrics)
    page = api.admin.get("/api/v1/readings", params={"device_id": "tg-json-1"}).json()
    assert [(r["ts"], r["temperature"]) for r in page["items"]] == [
        ("2025-11-28T01:02:03.456000Z", 19.5),
        ("2025-11-28T01:02:04.456000Z", 19.75),
        ("2025-11-28T01:02:05.456000Z", 20.0),
    ]
    (device,) = [
        d for d in api.admin.get("/api/v1/devices").json() if d["device_id"] == "tg-json-1"
    ]
    assert device["name"] == "Telegraf JSON"


def test_outputs_mqtt_non_batch_json_on_a_device_topic(
    env: dict[str, str],
    ingest: Callable[[], subprocess.Popen[bytes]],
    jsonata: Callable[[str, Any], Any],
) -> None:
    (config,) = documented_config("### Telegraf `outputs.mqtt`")["outputs"]["mqtt"]
    assert (config["layout"], config["qos"], config["json_timestamp_units"]) == (
        "non-batch",
        1,
        "1ms",
    )
    assert config["topic"] == 'weather/{{ .Tag "device" }}/telemetry'
    weatherpipe(env, "devices", "add", "tg-mqtt-1", "--latitude", "1.5", "--longitude", "2.5")
    weatherpipe(env, "bus", "setup")
    for stamp, value in zip(STAMPS_MS, (5.5, 6.0), strict=True):
        body = jsonata(config["json_transformation"], metric("tg-mqtt-1", value, stamp))
        publish(env, "tg-mqtt-1", json.dumps(body))  # the topic the template makes
    ingest()
    sql = "SELECT ts, temperature FROM readings WHERE device_id = 'tg-mqtt-1' ORDER BY ts"
    until(lambda: len(rows(env, sql)) == 2, 30, "the two readings")
    assert rows(env, sql) == [
        ("2025-11-28 01:02:03.456000", 5.5),
        ("2025-11-28 01:02:04.456000", 6.0),
    ]
