"""Device profiles: where each simulated sensor stands and the climate it measures."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import numpy as np

# Namespace for the UUIDs of generated devices, so `--devices N --seed S` is reproducible.
FLEET_NAMESPACE = uuid.UUID("8f1c2d3e-4b5a-4c6d-9e7f-a0b1c2d3e4f5")


@dataclass(frozen=True)
class Climate:
    """Mean temperature, daily swing, and how far and fast the weather wanders (°C, hours)."""

    name: str
    mean: float
    daily_amplitude: float
    weather_sd: float
    noise_sd: float


@dataclass(frozen=True)
class Device:
    device_id: str
    name: str
    latitude: float
    longitude: float
    climate: Climate


COLD = Climate("cold", mean=-8.0, daily_amplitude=2.5, weather_sd=4.0, noise_sd=0.05)
TEMPERATE = Climate("temperate", mean=11.0, daily_amplitude=5.0, weather_sd=3.0, noise_sd=0.05)
HOT = Climate("hot", mean=33.0, daily_amplitude=7.0, weather_sd=2.0, noise_sd=0.05)
CLIMATES = (COLD, TEMPERATE, HOT)

DEFAULT_DEVICES = (
    Device("2f8d9b1a-3c4e-4f60-8a7b-9c0d1e2f3a4b", "Longyearbyen", 78.2232, 15.6267, COLD),
    Device("6b4fa32e-a7f5-4ec2-8820-6581468ef36b", "Berlin", 52.52, 13.405, TEMPERATE),
    Device("c3e1f5a7-9b2d-4e6f-8a1c-3d5e7f9a1b2c", "Dubai", 25.2048, 55.2708, HOT),
)


def fleet(count: int, seed: int = 0) -> list[Device]:
    """The three default devices, then generated ones in random places of the three climates."""
    if count <= len(DEFAULT_DEVICES):
        return list(DEFAULT_DEVICES[:count])
    rng = np.random.default_rng(seed)
    devices = list(DEFAULT_DEVICES)
    for index in range(len(DEFAULT_DEVICES), count):
        climate = CLIMATES[index % len(CLIMATES)]
        devices.append(
            Device(
                str(uuid.uuid5(FLEET_NAMESPACE, f"{seed}:{index}")),
                f"sim-{index:05d}",
                round(float(rng.uniform(-60, 75)), 4),
                round(float(rng.uniform(-180, 180)), 4),
                climate,
            )
        )
    return devices
