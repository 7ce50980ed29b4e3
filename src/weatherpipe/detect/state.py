"""Detector state as the database keeps it: versioned JSON text, never pickle.

Reading state must not be able to run code, so stored state is parsed only as JSON and handed
to the detector's `from_state`; anything else (a pickle from an older weatherpipe, damaged
text, another version's layout) is not used: the device's detector starts afresh, and one
warning says which device and why.
"""

from __future__ import annotations

import logging

import orjson

from weatherpipe.detect import Detector, detector_from_state

log = logging.getLogger(__name__)

# What migration 0002 left in place of each pickled state (the pickles were never read).
PICKLE_FORMAT = "pickle"


def dump(detector: Detector) -> str:
    """The detector's state as JSON text."""
    return orjson.dumps(detector.to_state()).decode()


def restore(detector_name: str, device_id: str, stored: str | bytes) -> Detector | None:
    """The detector `stored` describes, or None (after one warning) when it cannot be used."""
    try:
        state = orjson.loads(stored)
    except orjson.JSONDecodeError:
        return _unusable(detector_name, device_id, "not JSON (an old pickle? never unpickled)")
    if not isinstance(state, dict):
        return _unusable(detector_name, device_id, "not a JSON object")
    if state.get("format") == PICKLE_FORMAT:
        return _unusable(
            detector_name, device_id, "pickled by an older weatherpipe; pickles are never loaded"
        )
    try:
        return detector_from_state(detector_name, state)
    except ValueError as exc:  # the contract: an unknown or older version
        return _unusable(detector_name, device_id, str(exc))
    except Exception as exc:  # damaged data of the right version: still never a crash
        return _unusable(detector_name, device_id, f"damaged ({type(exc).__name__}: {exc})")


def _unusable(detector_name: str, device_id: str, reason: str) -> Detector | None:
    log.warning(
        "device %s: stored %s detector state not used: %s; the detector starts afresh (warming up)",
        device_id,
        detector_name,
        reason,
    )
    return None  # (typed as restore's answer, so restore can return it)
