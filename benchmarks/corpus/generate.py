"""Write the labelled corpus: `python -m benchmarks.corpus.generate OUT_DIR [--set NAME]`."""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.corpus import faults, greenhouse, sensor, weather
from benchmarks.corpus.sets import KINDS, SETS, SetSpec, StreamPlan, plan_set

log = logging.getLogger(__name__)

YEAR_START_MS = 1_767_225_600_000  # 2026-01-01 00:00:00 UTC
INDOOR_UTC_OFFSETS = (-5, 9)


@dataclass
class Built:
    """One generated stream, ready to write."""

    plan: StreamPlan
    timestamps_ms: np.ndarray
    values: np.ndarray
    windows: list[tuple[int, int, str]]
    meta: dict[str, object]


def format_ms(ms: np.ndarray) -> list[str]:
    """UTC milliseconds as `YYYY-MM-DD HH:MM:SS.fff`."""
    text = np.datetime_as_string(ms.astype("datetime64[ms]"), unit="ms")
    return [s.replace("T", " ") for s in text.tolist()]


def _clock(plan: StreamPlan, rng: np.random.Generator) -> tuple[int, int, weather.Clock]:
    """Start anywhere in 2026 at any millisecond of the day, in the site's time zone."""
    start_ms = YEAR_START_MS + int(rng.integers(0, 365 * 86_400_000))
    if plan.climate == "indoor":
        offset_h = int(rng.integers(INDOOR_UTC_OFFSETS[0], INDOOR_UTC_OFFSETS[1] + 1))
        swing = 1.5
    else:
        climate = weather.CLIMATES[plan.climate]
        offset_h = int(rng.integers(climate.utc_offset_h[0], climate.utc_offset_h[1] + 1))
        swing = climate.day_length_swing_h
    local_s = (start_ms - YEAR_START_MS) / 1000.0 + offset_h * 3600.0
    day = math.floor(local_s / weather.DAY_S)
    clock = weather.Clock(local_s - day * weather.DAY_S, float(day), swing)
    return start_ms, offset_h, clock


def _truth(
    plan: StreamPlan, clock: weather.Clock, times: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, dict[str, object], tuple[float, float], dict[str, float]]:
    """What the sensor's element feels at each reading time (the true temperature, lagged by
    the sensor's thermal mass if it has one), what was drawn, the plausible range, and the lag.
    """
    tau = weather.grid(plan.duration_s)
    if plan.climate == "indoor":
        on_grid, drawn = weather.indoor(clock, plan.duration_s, rng)
        plausible = weather.INDOOR_PLAUSIBLE
    elif plan.climate == "greenhouse":
        climate = weather.CLIMATES[plan.climate]
        outside, drawn = weather.outdoor(climate, clock, plan.duration_s, False, rng)
        del drawn["in_sun"]
        on_grid, inside = greenhouse.inside(outside, climate, clock, tau, rng)
        drawn.update(inside)
        plausible = climate.plausible
    else:
        climate = weather.CLIMATES[plan.climate]
        in_sun = bool(rng.random() < 0.5)
        on_grid, drawn = weather.outdoor(climate, clock, plan.duration_s, in_sun, rng)
        plausible = climate.plausible
    on_grid, lag = sensor.thermal_lag(plan.noise_model, on_grid, weather.GRID_S, rng)
    return np.interp(times, tau, on_grid), drawn, plausible, lag


def build_stream(plan: StreamPlan) -> Built:
    """Generate one stream from its plan and its own RNG (seeded by set seed and index)."""
    rng = np.random.default_rng(plan.seed)
    start_ms, offset_h, clock = _clock(plan, rng)
    period = plan.sampling.period_s
    planned = faults.place(plan.faults, plan.duration_s, plan.early, period, rng)
    times, sampling_meta = sensor.sample_times(
        plan.sampling, plan.duration_s, faults.protected(planned, plan.duration_s, period), rng
    )
    truth, weather_meta, plausible, lag_meta = _truth(plan, clock, times, rng)
    sigma, sigma_meta = sensor.noise_sigma(
        plan.quantum, clock.solar(times), plan.climate == "indoor", rng
    )
    unit, noise_meta = sensor.unit_noise(plan.noise_model, times, rng)
    slow, wander_meta = sensor.wander(plan.noise_model, times, rng)
    if wander_meta:
        truth = truth + slow
    stream = faults.Stream(
        times, truth + sigma * unit, sigma, sigma_meta["sigma_typical_c"], plan.quantum, plausible
    )
    faults.add_faults(planned, stream, rng)
    stream.values = sensor.quantise(stream.values, plan.quantum)
    faults.overwrite_faults(planned, stream, rng)
    timestamps_ms = start_ms + np.round(times * 1000.0).astype(np.int64)
    windows = [
        (start_ms + round(a * 1000.0), start_ms + round(b * 1000.0), kind)
        for a, b, kind in faults.windows(planned, times, period)
    ]
    meta: dict[str, object] = {
        "climate": plan.climate,
        "start": format_ms(timestamps_ms[:1])[0],
        "utc_offset_h": offset_h,
        "duration_s": round(float(times[-1]), 3),
        "n_readings": len(times),
        "seed": plan.seed,
        "sigma_c": sigma_meta["sigma_typical_c"],
        "plausible_c": list(plausible),
        "normal_seconds": round(float(times[-1]) - sum(b - a for a, b, _ in windows) / 1000, 3),
        "sensor": {"quantum_c": plan.quantum, "noise_model": plan.noise_model,
                   **noise_meta, **lag_meta, **wander_meta, **sigma_meta},
        "sampling": sampling_meta,
        "weather": weather_meta,
        "anomalies": _anomaly_meta(planned, windows),
    }
    return Built(plan, timestamps_ms, stream.values, windows, meta)


def _anomaly_meta(
    planned: list[faults.Fault], windows: list[tuple[int, int, str]]
) -> list[dict[str, object]]:
    out = []
    for fault, (start, end, kind) in zip(planned, windows, strict=True):
        entry: dict[str, object] = {
            "kind": kind,
            "start": format_ms(np.array([start]))[0],
            "end": format_ms(np.array([end]))[0],
        }
        if fault.variant:
            entry["variant"] = fault.variant
        if fault.kind in ("shift", "drift"):
            entry["released"] = not fault.held
        entry.update({k: _plain(v) for k, v in fault.detail.items()})
        out.append(entry)
    return out


def _plain(value: object) -> object:
    """Round floats so the JSON is short and identical across platforms."""
    return round(float(value), 4) if isinstance(value, float | np.floating) else value


def csv_text(built: Built) -> str:
    digits = sensor.decimals(built.plan.quantum)
    stamps = format_ms(built.timestamps_ms)
    rows = [f"{t},{v:.{digits}f}" for t, v in zip(stamps, built.values.tolist(), strict=True)]
    return "timestamp,value\n" + "\n".join(rows) + "\n"


def write_set(
    spec: SetSpec, out_dir: Path, indices: Iterable[int] | None = None
) -> dict[str, int]:
    """Write a set's CSVs, windows and meta; return anomalies per kind."""
    plans = plan_set(spec)
    chosen = [plans[i] for i in indices] if indices is not None else plans
    data_dir = out_dir / "data" / spec.name
    data_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "labels").mkdir(parents=True, exist_ok=True)
    labels: dict[str, list[list[str]]] = {}
    metas: dict[str, object] = {}
    counts = dict.fromkeys(KINDS, 0)
    for plan in chosen:
        built = build_stream(plan)
        key = f"{spec.name}/{plan.name}.csv"
        (out_dir / "data" / key).write_text(csv_text(built), encoding="utf-8")
        labels[key] = [[*format_ms(np.array([a, b])), kind] for a, b, kind in built.windows]
        metas[key] = built.meta
        for _, _, kind in built.windows:
            counts[kind] += 1
    _write_json(out_dir / "labels" / f"{spec.name}_windows.json", labels)
    _write_json(out_dir / "labels" / f"{spec.name}_meta.json", metas)
    return counts


def _write_json(path: Path, payload: object) -> None:
    path.write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.corpus.generate", description=__doc__
    )
    parser.add_argument("out_dir", type=Path, help="directory to write data/ and labels/ into")
    parser.add_argument("--set", choices=[*SETS, "all"], default="all", dest="which")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    names = list(SETS) if args.which == "all" else [args.which]
    for name in names:
        began = time.perf_counter()
        counts = write_set(SETS[name], args.out_dir)
        log.info(
            "%s: %d streams, anomalies %s, %.1f s -> %s",
            name, SETS[name].n_streams, counts, time.perf_counter() - began,
            args.out_dir / "data" / name,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
