"""The default detector: robust, calibrated tests per fault kind, each line set by a false-alarm rate.

Per reading, against the device's own robust statistics (one parameter set for every device):

- spike / dip: distance from the rolling median of the last readings, in residual scales;
- shift: a two-sided CUSUM of the clipped, standardised errors of a level-and-trend predictor
  (a ramp, like a passing front, is predicted; a step is not);
- drift: a fast mean minus a slow mean, in that difference's own long-run scale;
- stuck: a run of identical readings, as a tail probability under the stream's repeat rate;
- noise: the log ratio of a short to a long scale of first differences (MAD-like, clipped);
- range: a reading leaves the band outdoor air can have, on a device that lives inside it;
- gap: the sampling stopped for far longer than the stream's usual interval.

calibration.py turns the sensitivity (false alarms per device per day on normal weather) into
each test's line. An onset is flagged when an armed test passes its line; a test re-arms once its
statistic falls back under half the line, so a held fault is reported once. docs/detection.md
has the constants' meaning and the measured results.
"""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from collections.abc import Sequence
from typing import Any, Self

from weatherpipe.detect import calibration
from weatherpipe.detect.base import (
    DEFAULT_FALSE_ALARMS_PER_DAY,
    Detector,
    Verdict,
    decode_float,
    encode_float,
)

WARMUP_SECONDS = 300.0  # a new device is monitored after five minutes of its data
NOISE_READINGS = 600.0  # memory of the long noise scales (10 minutes at 1 Hz)
BURST_READINGS = 20.0  # memory of the short noise scale: a burst shows within ~20 readings
MEDIAN_READINGS = 15  # a spike or dip of up to 7 readings cannot move the rolling median
CLIP = 4.0  # a step past 4 scales counts as 4 in every scale, so faults do not widen them
LEVEL_GAIN = 0.02  # the predictor follows the level over ~50 readings ...
TREND_GAIN = 0.0005  # ... and the trend over ~2,000: a front's ramp is predicted
SHIFT_READINGS = 30.0  # prediction errors averaged over ~30 readings: a held step stands out
DRIFT_FAST, DRIFT_SLOW = 60.0, 1_800.0  # readings: one minute against half an hour at 1 Hz
DRIFT_SCALE_READINGS = 7_200.0  # the fast-slow difference's own scale, over two hours
REPEAT_READINGS = 3_600.0  # memory of the stream's repeat rate
GAP_FACTOR, GAP_SECONDS = 30.0, 600.0  # silence of 30 usual intervals and 10 minutes
BAND = (-90.0, 60.0)  # degrees C outdoor air can have (records: -89.2, +56.7)
REARM = 0.5  # a test fires again only after its statistic fell under half its line
RELINE_READINGS = 64  # lines follow the sampling interval, re-derived this often
SPIKE, SHIFT, DRIFT, STUCK, NOISE = range(5)
RANGE_BIT = 1 << 5  # `held` bit of the range test: set while the reading stays out of band
GAP = Verdict(0.75, True, "gap", "low")
QUIET = Verdict(0.0, False)

_FLOATS = (
    "false_alarms_per_day", "first_ts", "last_ts", "prev", "dt", "sd", "sd_fast", "res",
    "level", "trend", "err", "gp", "gn", "fast", "slow", "dscale", "reps", "steps", "nlp",
)  # fmt: skip
_INTS = ("n", "run", "outside", "held")


class VigilDetector(Detector):
    """Flags the onset of a fault (spike, dip, shift, drift, stuck, noise, range, gap) with a
    severity; lines are set by `false_alarms_per_day` on normal weather."""

    name = "vigil"

    def __init__(self, false_alarms_per_day: float = DEFAULT_FALSE_ALARMS_PER_DAY) -> None:
        self.false_alarms_per_day = float(false_alarms_per_day)
        self.n = 0  # readings seen
        self.first_ts = self.last_ts = self.prev = 0.0
        self.dt = 1.0  # the stream's usual sampling interval, seconds
        self.sd = self.sd_fast = self.res = 0.0  # long / short step scale, median residual scale
        self.level = self.trend = self.err = self.gp = self.gn = 0.0  # predictor and CUSUM
        self.fast = self.slow = self.dscale = 0.0  # drift means and scale
        self.reps, self.steps, self.nlp = 0.0, 0.0, math.log(2.0)  # repeat rate: -ln P(repeat)
        self.run = 0  # identical readings in a row, after the first
        self.outside = 0  # readings outside BAND (a device that lives outside it is not air)
        self.held = 0  # bit per test: fired and not yet back under REARM of its line
        self.window: list[float] = []  # the last MEDIAN_READINGS readings, oldest first
        self.lines = calibration.lines(self.false_alarms_per_day, self.dt)
        # Calibration only (benchmarks/detect_calibrate.py): each monitored reading's statistics.
        self.trace: list[tuple[float, ...]] | None = None

    @property
    def warming_up(self) -> bool:
        return self.n == 0 or self.last_ts - self.first_ts < WARMUP_SECONDS

    def score_one(self, ts: float, value: float) -> float:
        return self.from_state(self.to_state()).process_one(ts, value).score

    def learn_one(self, ts: float, value: float) -> None:
        self.process_many((ts,), (value,))

    def process_one(self, ts: float, value: float) -> Verdict:
        return self.process_many((ts,), (value,))[0]

    def process_many(self, ts: Sequence[float], values: Sequence[float]) -> list[Verdict]:
        # One loop over locals serves both paths (batch and single are equal by construction);
        # attribute look-ups inside it would halve the throughput.
        fa = self.false_alarms_per_day
        n, first_ts, last_ts, prev, dt = self.n, self.first_ts, self.last_ts, self.prev, self.dt
        sd, sd_fast, res = self.sd, self.sd_fast, self.res
        level, trend, err, gp, gn = self.level, self.trend, self.err, self.gp, self.gn
        fast, slow, dscale = self.fast, self.slow, self.dscale
        reps, steps, nlp, run, outside, held = (
            self.reps, self.steps, self.nlp, self.run, self.outside, self.held,
        )  # fmt: skip
        window = self.window
        srt = sorted(window)
        trace = self.trace
        h_spike, h_shift, h_drift, h_stuck, h_noise = self.lines
        lo_band, hi_band = BAND
        a_shift = 1.0 / SHIFT_READINGS
        a_burst, a_drift_f, a_drift_s = 1.0 / BURST_READINGS, 1.0 / DRIFT_FAST, 1.0 / DRIFT_SLOW
        forget = 1.0 - 1.0 / REPEAT_READINGS
        log, exp = math.log, math.exp
        severity = calibration.severity
        out: list[Verdict] = []
        append = out.append
        ts = ts.tolist() if hasattr(ts, "tolist") else ts
        values = values.tolist() if hasattr(values, "tolist") else values
        for t, x in zip(ts, values, strict=True):
            if n == 0:
                first_ts = last_ts = t
                prev = level = fast = slow = x
                window.append(x)
                srt.append(x)
                n = 1
                outside = 0 if lo_band <= x <= hi_band else 1
                append(Verdict(0.0, False))
                continue
            gap = t - last_ts
            last_ts = t
            n += 1
            monitored = t - first_ts >= WARMUP_SECONDS
            in_band = lo_band <= x <= hi_band
            band_kept = in_band or outside * 100 > n  # leaving the band counts on air sensors
            if not in_band:
                outside += 1
            if gap > GAP_FACTOR * dt and gap > GAP_SECONDS:
                # The world moved while nobody looked: start the short memories afresh.
                window[:] = [x]
                srt = [x]
                prev = level = fast = x
                trend = gp = 0.0
                run = 0
                append(GAP if monitored else QUIET)
                continue
            dt += (min(gap, 3.0 * dt) - dt) / (n - 1 if n < 101 else 100)
            # Scale memories start as plain averages and become moving ones.
            a_noise = 1.0 / (n - 1) if n <= NOISE_READINGS else 1.0 / NOISE_READINGS
            tiny = 1e-9 * (abs(x) + 1.0)
            a_d = 1.0 / n if n < DRIFT_SCALE_READINGS else 1.0 / DRIFT_SCALE_READINGS

            # spike / dip: against the rolling median of the readings before this one
            m = len(srt)
            med = srt[m >> 1] if m & 1 else 0.5 * (srt[m >> 1] + srt[(m >> 1) - 1])
            r = x - med
            s_spike = abs(r) / (res + tiny) if m >= 5 else 0.0
            cap = CLIP * res if res > 0.0 else abs(r)
            res += ((abs(r) if abs(r) < cap else cap) - res) * a_noise

            # noise burst and the step scales
            step = abs(x - prev)
            cap = CLIP * sd if sd > 0.0 else step
            sd_prev = sd
            sd += ((step if step < cap else cap) - sd) * a_noise
            sd_fast += (step - sd_fast) * (a_burst if n > BURST_READINGS else 1.0 / (n - 1))
            s_noise = log((sd_fast + tiny) / (sd_prev + tiny)) if n > BURST_READINGS else 0.0

            # stuck: a run of identical readings, judged by the stream's own repeat rate
            if x == prev:
                run += 1
            elif run or steps < REPEAT_READINGS:
                decay = forget ** (run + 1)
                reps = reps * decay + run
                steps = steps * decay + run + 1
                nlp = -log((reps + 1.0) / (steps + 2.0))
                run = 0
            else:
                steps = steps * forget + 1.0
                nlp = -log((reps + 1.0) / (steps + 2.0))
            s_stuck = run * nlp

            # shift: the predictor's recent errors, averaged, in their own long-run scale (so
            # autocorrelated sensor noise and weather set the scale, not a white-noise model)
            e = x - level - trend
            cap = CLIP * err if err > 0.0 else abs(e)
            ec = e if abs(e) < cap else (cap if e > 0.0 else -cap)
            gp += (ec - gp) * a_shift
            s_shift = abs(gp) / (gn + tiny) if n > SHIFT_READINGS else 0.0
            cap = CLIP * gn if gn > 0.0 else abs(gp)
            gn += ((abs(gp) if abs(gp) < cap else cap) - gn) * a_d
            level += trend + LEVEL_GAIN * ec
            trend += TREND_GAIN * ec
            err += (abs(ec) - err) * a_noise

            # drift: a fast mean walking away from a slow one, in its own long-run scale
            fast += (x - fast) * (a_drift_f if n > DRIFT_FAST else 1.0 / n)
            slow += (x - slow) * (a_drift_s if n > DRIFT_SLOW else 1.0 / n)
            d = fast - slow
            s_drift = abs(d) / (dscale + sd + tiny) if n > DRIFT_FAST else 0.0
            cap = CLIP * dscale if dscale > 0.0 else abs(d)
            dscale += ((abs(d) if abs(d) < cap else cap) - dscale) * a_d

            window.append(x)
            insort(srt, x)
            if len(window) > MEDIAN_READINGS:
                del srt[bisect_left(srt, window.pop(0))]
            prev = x
            if n % RELINE_READINGS == 0:
                h_spike, h_shift, h_drift, h_stuck, h_noise = calibration.lines(fa, dt)

            # The decision: the armed test furthest past its line fires; held tests re-arm low.
            stats = (s_spike, s_shift, s_drift, s_stuck, s_noise)
            if trace is not None and monitored:
                trace.append(stats)
            hs = (h_spike, h_shift, h_drift, h_stuck, h_noise)
            best, ratio = -1, 0.0
            for k in range(5):
                q = stats[k] / hs[k]
                if held >> k & 1:
                    if q < REARM:
                        held &= ~(1 << k)
                elif q > ratio:
                    best, ratio = k, q
            score = 1.0 - exp(-0.6931471805599453 * ratio) if monitored else 0.0
            if in_band:
                held &= ~RANGE_BIT
            elif monitored and band_kept and not held & RANGE_BIT:
                held |= RANGE_BIT
                append(Verdict(max(score, 0.9), True, "range", "high"))
                continue
            if not monitored or ratio < 1.0:
                append(Verdict(score, False))
                continue
            held |= 1 << best
            kind = ("spike" if r > 0.0 else "dip", "shift", "drift", "stuck", "noise")[best]
            if best == SHIFT:
                gp, level, trend = 0.0, x, 0.0
            append(Verdict(score, True, kind, severity(best, stats[best], hs[best])))
        self.n, self.first_ts, self.last_ts, self.prev, self.dt = n, first_ts, last_ts, prev, dt
        self.sd, self.sd_fast, self.res = sd, sd_fast, res
        self.level, self.trend, self.err, self.gp, self.gn = level, trend, err, gp, gn
        self.fast, self.slow, self.dscale = fast, slow, dscale
        self.reps, self.steps, self.nlp, self.run = reps, steps, nlp, run
        self.outside, self.held = outside, held
        self.lines = [h_spike, h_shift, h_drift, h_stuck, h_noise]
        return out

    def to_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {"detector": self.name, "version": self.state_version}
        state.update({k: encode_float(getattr(self, k)) for k in _FLOATS})
        state.update({k: getattr(self, k) for k in _INTS})
        state["window"] = list(self.window)
        state["lines"] = list(self.lines)
        return state

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Self:
        cls.check_version(state)
        detector = cls(decode_float(state["false_alarms_per_day"]))
        for k in _FLOATS:
            setattr(detector, k, decode_float(state[k]))
        for k in _INTS:
            setattr(detector, k, int(state[k]))
        detector.window = [float(v) for v in state["window"]]
        detector.lines = [float(v) for v in state["lines"]]
        return detector
