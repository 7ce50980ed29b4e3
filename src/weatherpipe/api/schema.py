"""The reading's wire format as a JSON Schema (draft 2020-12), served at
/api/v1/schema/reading.json: the published contract of docs/devices.md, built from the
decoder's own limits so the two cannot drift apart."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from weatherpipe.reading import (
    ABSOLUTE_ZERO_C,
    DEVICE_ID,
    MAX_SEQ,
    MAX_TEMPERATURE_C,
    SCHEMA_VERSION,
)

PATH = "/api/v1/schema/reading.json"
router = APIRouter(tags=["devices"])

_READING: dict[str, Any] = {
    "type": "object",
    "properties": {
        "v": {"const": SCHEMA_VERSION, "description": "Schema version (default 1 over HTTP)."},
        "device_id": {
            "type": "string",
            "pattern": f"^{DEVICE_ID.pattern}$",
            "description": "A canonical lower-case UUID or a readable id (1-64 of a-z 0-9 . _ -). "
            "Over HTTP with a device token, or on a per-device MQTT topic, it may be left out.",
        },
        "ts": {
            "type": "string",
            "format": "date-time",
            "description": "RFC 3339 with a Z or an offset; milliseconds kept. Over HTTP and "
            "per-device MQTT it may be left out: the time received is used.",
        },
        "temperature": {
            "type": "number",
            "minimum": ABSOLUTE_ZERO_C,
            "maximum": MAX_TEMPERATURE_C,
            "description": "Degrees Celsius.",
        },
        "latitude": {"type": "number", "minimum": -90, "maximum": 90},
        "longitude": {"type": "number", "minimum": -180, "maximum": 180},
        "seq": {
            "type": "integer",
            "minimum": 0,
            "maximum": MAX_SEQ,
            "description": "A per-device counter (optional); gaps are reported.",
        },
    },
    "required": ["temperature"],
    "dependentRequired": {"latitude": ["longitude"], "longitude": ["latitude"]},
}

READING_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": PATH,
    "title": "weatherpipe reading (schema v1)",
    "description": "One reading, or a batch (an array) of them, as POST /api/v1/telemetry takes "
    "them. On the shared bus topic v, device_id and ts are required as well. Unknown fields are "
    "ignored; a message is at most 65,536 bytes. See docs/devices.md.",
    "oneOf": [
        {"$ref": "#/$defs/reading"},
        {"type": "array", "items": {"$ref": "#/$defs/reading"}, "minItems": 1},
    ],
    "$defs": {"reading": _READING},
}


@router.get(PATH, summary="The reading's JSON Schema")
async def reading_schema() -> dict[str, Any]:
    """The wire format of a reading (and of a batch) as a JSON Schema; public, no token."""
    return READING_SCHEMA
