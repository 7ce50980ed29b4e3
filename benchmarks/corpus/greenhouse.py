"""The air inside a greenhouse: solar gain by day, heating by night, vents when it gets hot.

Normal, never labelled, and fast: vents opening pull the air down by degrees within minutes,
a passing cloud takes the solar gain away, the heater cycles around its setpoint on cold nights.
"""

from __future__ import annotations

import math

import numpy as np

from benchmarks.corpus import weather

STEP_S = 30.0  # the controller's time step; interpolated back onto the weather grid
HEATER_PUSH_C = 3.0  # a running heater pulls the air towards this far above its setpoint


def inside(
    outside: np.ndarray,
    climate: weather.Climate,
    clock: weather.Clock,
    tau: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, dict[str, object]]:
    """The inside air on the weather grid `tau`, given the outside air on it."""
    gain = rng.uniform(8.0, 20.0)  # °C above outside in full sun with the vents shut
    retained = rng.uniform(1.0, 3.0)  # what the glass keeps at night
    heating = rng.uniform(8.0, 16.0)
    vent_at = rng.uniform(24.0, 30.0)
    band = rng.uniform(1.5, 4.0)  # vents close again this far below where they opened
    cut = rng.uniform(0.5, 0.8)  # share of the solar gain the open vents remove
    slow, fast = rng.uniform(600.0, 1500.0), rng.uniform(120.0, 360.0)
    heater_band = rng.uniform(0.5, 1.5)  # the heater's on/off hysteresis around its setpoint
    sun = weather.sunshine(climate, tau, rng) * clock.solar(tau)
    coarse = np.arange(0.0, tau[-1] + STEP_S, STEP_S)
    shut = np.interp(coarse, tau, outside + retained + gain * sun)
    vented = np.interp(coarse, tau, outside + 0.3 * retained + gain * (1.0 - cut) * sun)
    air, openings = _control(
        shut, vented, (heating, heater_band), (vent_at, band), (slow, fast)
    )
    drawn: dict[str, object] = {
        "solar_gain_c": round(gain, 2),
        "heating_c": round(heating, 2),
        "heater_band_c": round(heater_band, 2),
        "vent_open_c": round(vent_at, 2),
        "vent_band_c": round(band, 2),
        "vent_openings": openings,
    }
    return np.interp(tau, coarse, air), drawn


def _control(
    shut: np.ndarray,
    vented: np.ndarray,
    heater: tuple[float, float],
    vents: tuple[float, float],
    time_constants: tuple[float, float],
) -> tuple[np.ndarray, int]:
    """Relax towards the shut or vented equilibrium. The heater (setpoint, band) switches on
    half a band below its setpoint and off half a band above; vents (opening temperature,
    band) open at it and close a band below. Returns the air and how often vents opened.
    """
    heating, heater_band = heater
    vent_at, vent_band = vents
    keep_shut, keep_open = (math.exp(-STEP_S / t) for t in time_constants)
    air = np.empty(len(shut))
    temp = max(float(shut[0]), heating)
    is_open, heater_on = temp >= vent_at, False
    openings = 0
    for i, (a, b) in enumerate(zip(shut.tolist(), vented.tolist(), strict=True)):
        target = b if is_open else a
        if heater_on:
            target = max(target, heating + HEATER_PUSH_C)
        keep = keep_open if is_open else keep_shut
        temp = keep * temp + (1.0 - keep) * target
        if not is_open and temp >= vent_at:
            is_open, openings = True, openings + 1
        elif is_open and temp <= vent_at - vent_band:
            is_open = False
        if temp < heating - heater_band / 2:
            heater_on = True
        elif temp > heating + heater_band / 2:
            heater_on = False
        air[i] = temp
    return air, openings
