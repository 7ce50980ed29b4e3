"""The default detector: robust tests per fault kind, each line set by a false-alarm rate.

Per reading, against the device's own robust statistics (one parameter set for every device):

- spike / dip: distance from the rolling median of the last readings, in residual scales;
- shift: the mean of the last minute against the trend of the four minutes before it,
  extrapolated (a ramp, like a passing front, is predicted; a step is not), in its own scale;
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

from weatherpipe.detect import budget, calibration
from weatherpipe.detect.base import DEFAULT_FALSE_ALARMS_PER_DAY as DEFAULT_RATE
from weatherpipe.detect.base import Detector, Verdict, decode_float, encode_float

WARMUP_SECONDS = 300.0  # a new device is monitored after five minutes of its data
NOISE_READINGS = 600.0  # memory of the noise scales (10 minutes at 1 Hz)
BURST_READINGS = 20.0  # memory of the short noise scale: a burst shows within ~20 readings
MEDIAN_READINGS = 15  # a spike or dip of up to 7 readings cannot move the rolling median
CLIP = 4.0  # a value past 4 scales counts as 4 in every scale and sum, so faults do not widen them
# Step test: the mean of the last AFTER readings against the BEFORE readings ahead of them, less
# the trend of the TREND readings ahead of those. Short windows, because weather wanders like a
# random walk (its minute-to-minute change rivals the sensor noise); a long trend, so a front's
# ramp is not a step.
AFTER, BEFORE, TREND = 10, 20, 240
STEP_SCALE_READINGS = 600.0  # the step statistic's own scale: the last 10 minutes' weather
STEP_FLOOR = 0.3  # ... never under white noise's: 0.3 mean steps for these window lengths
STEP_PRIOR_READINGS = 60  # ... and its prior (twice the floor) weighs as a minute of readings
REBASE_READINGS = 4_096  # the step test's running sums are recomputed this often (rounding)
DRIFT_FAST, DRIFT_SLOW = 60.0, 1_800.0  # readings: one minute against half an hour at 1 Hz
DRIFT_SCALE_READINGS = 7_200.0  # the fast-slow difference's own scale, over two hours
REPEAT_READINGS = 600.0  # memory of the stream's repeat rate (10 minutes at 1 Hz)
RUN_WEIGHT = 60  # repeats one run may teach it (a minute at 1 Hz)
GAP_FACTOR, GAP_SECONDS = 30.0, 3_600.0  # silence of 30 usual intervals and an hour
BAND = (-90.0, 60.0)  # degrees C outdoor air can have (records: -89.2, +56.7)
REARM = 0.5  # a test fires again only after its statistic fell under half its line
SETTLE_READINGS = 300  # the step test waits up to this long for a reported fault to calm down
TAIL_READINGS = 86_400  # memory of each test's tail: a day at 1 Hz
TAIL_PRIOR_READINGS = 600  # the tuning corpus's tail weighs as 10 minutes of 1 Hz readings
RELINE_READINGS = 64  # lines follow the tails and the sampling interval, re-derived this often
SPIKE, SHIFT, DRIFT, STUCK, NOISE = range(5)
INF = math.inf
ALL_TESTS = (1 << 5) - 1
RANGE_BIT = 1 << 5  # `held` bit of the range test: set while the reading stays out of band
GAP = Verdict(0.75, True, "gap", "low")
RANGE = Verdict(1.0, True, "range", "high")
QUIET = Verdict(0.0, False)
_J_MEAN = (TREND - 1) / 2.0
_J_VAR = TREND * (TREND * TREND - 1) / 12.0  # sum of squared deviations of positions
_REACH = (BEFORE + AFTER) / 2.0  # from the before window's centre to the after window's

_FLOATS = (
    "false_alarms_per_day", "quantum", "first_ts", "last_ts", "prev", "dt", "sd", "sd_fast", "res",
    "base", "st0", "st1", "sb", "sa", "sscale", "fast", "slow", "dscale", "reps", "steps", "nlp",
    "cal_ts",
)  # fmt: skip
_INTS = ("n", "run", "outside", "held", "pos", "ksteps", "quiet")


def _sums(ring: list[float], pos: int) -> tuple[float, float, float, float]:
    """The step test's sums, exactly: the trend window's sum and position-weighted sum, the
    before window's sum and the after window's."""
    ordered = ring[pos:] + ring[:pos]
    trend = ordered[:TREND]
    return (
        math.fsum(trend),
        math.fsum(j * v for j, v in enumerate(trend)),
        math.fsum(ordered[TREND : TREND + BEFORE]),
        math.fsum(ordered[TREND + BEFORE :]),
    )


class VigilDetector(Detector):
    """Flags the onset of a fault (spike, dip, shift, drift, stuck, noise, range, gap) with a
    severity; lines are set by `false_alarms_per_day` on normal weather."""

    name = "vigil"
    state_version = 2  # 2: per-device line offsets (budget.py)

    def __init__(self, false_alarms_per_day: float = DEFAULT_RATE) -> None:
        self.false_alarms_per_day = float(false_alarms_per_day)
        self.n = 0  # readings seen
        self.quantum = math.inf  # the smallest step between readings seen: the resolution
        self.first_ts = self.last_ts = self.prev = 0.0
        self.dt = 1.0  # the stream's usual sampling interval, seconds
        self.sd = self.sd_fast = self.res = 0.0  # long / short step scale, median residual scale
        self.base = 0.0  # the step test's sums hold readings minus this (small sums, exact)
        self.st0 = self.st1 = self.sb = self.sa = self.sscale = 0.0  # step test sums and scale
        self.ring: list[float] = []  # the step test's last TREND + BEFORE + AFTER readings
        self.pos = 0  # the ring's oldest entry, once full
        self.ksteps = 0  # step statistics learnt into its scale
        self.fast = self.slow = self.dscale = 0.0  # drift means and scale
        self.reps, self.steps, self.nlp = 0.0, 0.0, math.log(2.0)  # repeat rate: -ln P(repeat)
        self.run = 0  # identical readings in a row, after the first
        self.outside = 0  # readings outside BAND (a device that lives outside it is not air)
        self.held = 0  # bit per test: fired and not yet back under REARM of its line
        self.quiet = 0  # no test re-arms before this reading count (the onset's first minute)
        self.window: list[float] = []  # the last MEDIAN_READINGS readings, oldest first
        self.passes = calibration.priors()  # per test: chances a reading passes its ref levels
        self.offsets = budget.fresh()  # per test: nats its line was raised on this device
        self.cal_ts = 0.0  # device time the offsets were last lowered to
        self.lines = calibration.lines(self.false_alarms_per_day, self.dt, self.passes)
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
        fa, quantum = self.false_alarms_per_day, self.quantum
        n, first_ts, last_ts, prev, dt = self.n, self.first_ts, self.last_ts, self.prev, self.dt
        sd, sd_fast, res = self.sd, self.sd_fast, self.res
        base, sscale = self.base, self.sscale
        st0, st1, sb, sa = self.st0, self.st1, self.sb, self.sa
        ring, pos, ksteps, quiet = self.ring, self.pos, self.ksteps, self.quiet
        fast, slow, dscale = self.fast, self.slow, self.dscale
        reps, steps, nlp, run, outside, held = (
            self.reps, self.steps, self.nlp, self.run, self.outside, self.held,
        )  # fmt: skip
        window = self.window
        srt = sorted(window)
        trace = self.trace
        h_spike, h_shift, h_drift, h_stuck, h_noise = self.lines
        passes, offsets, cal_ts = self.passes, self.offsets, self.cal_ts
        p_spike, q_spike, p_shift, q_shift, p_drift, q_drift, p_stuck, q_stuck = passes[:8]
        p_noise, q_noise = passes[8:]
        tails = calibration.TAILS.values()
        r_spike, r_shift, r_drift, r_stuck, r_noise = (tail.ref for tail in tails)
        u_spike, u_shift, u_drift, u_stuck, u_noise = (tail.ref2 for tail in tails)
        lo_band, hi_band = BAND
        ring_size = TREND + BEFORE + AFTER
        a_burst, a_drift_f, a_drift_s = 1.0 / BURST_READINGS, 1.0 / DRIFT_FAST, 1.0 / DRIFT_SLOW
        forget = 1.0 - 1.0 / REPEAT_READINGS
        log, exp = math.log, math.exp
        severity, reline = calibration.severity, calibration.lines
        out: list[Verdict] = []
        append = out.append
        ts = ts.tolist() if hasattr(ts, "tolist") else ts
        values = values.tolist() if hasattr(values, "tolist") else values
        for t, x in zip(ts, values, strict=True):
            if not -1e300 < x < 1e300:  # NaN or infinite: no reading at all, nothing to learn
                append(QUIET)
                continue
            if n == 0:
                first_ts = last_ts = t
                prev = fast = slow = base = x
                window.append(x)
                srt.append(x)
                n = 1
                outside = 0 if lo_band <= x <= hi_band else 1
                append(QUIET)
                continue
            gap = t - last_ts
            last_ts = t
            n += 1
            monitored = t - first_ts >= WARMUP_SECONDS
            in_band = lo_band <= x <= hi_band
            air = outside * 100 <= n  # the band applies to devices that live inside it
            if not in_band:
                outside += 1
            if n == 2:
                dt = gap if gap > 0.0 else 1.0  # the first interval sets the usual one
            elif gap > GAP_FACTOR * dt and gap > GAP_SECONDS:
                # The world moved while nobody looked: start the short memories afresh.
                window[:] = [x]
                srt = [x]
                ring.clear()
                prev = fast = x
                run = pos = 0
                append(GAP if monitored else QUIET)
                continue
            if gap > 0.0:  # a repeated or out-of-order timestamp says nothing of the interval
                dt += (min(gap, 3.0 * dt) - dt) / (n - 1 if n < 101 else 100)

            # stuck: a run of identical readings, judged by the stream's own repeat rate
            if x == prev:
                run += 1
            elif run or steps < REPEAT_READINGS:
                # One run teaches at most RUN_WEIGHT repeats, so a stuck spell cannot make the
                # stream look repetitive, while a stream that plateaus often still learns it.
                kept = run if run < RUN_WEIGHT else RUN_WEIGHT
                decay = forget ** (kept + 1)
                reps = reps * decay + kept
                steps = steps * decay + kept + 1
                nlp = -log((reps + 1.0) / (steps + 2.0))
                run = 0
            else:
                steps = steps * forget + 1.0
                nlp = -log((reps + 1.0) / (steps + 2.0))
            s_stuck = run * nlp

            # Scale memories start as plain averages and become moving ones; a sensor that
            # looks stuck must not teach them calm.
            a_noise = 1.0 / (n - 1) if n <= NOISE_READINGS else 1.0 / NOISE_READINGS
            a_d = 1.0 / n if n < DRIFT_SCALE_READINGS else 1.0 / DRIFT_SCALE_READINGS
            if s_stuck > REARM * h_stuck:
                a_noise = a_d = 0.0
            tiny = 1e-9 * (abs(x) + 1.0)

            # The sensor's resolution: a reading one quantum off its neighbours is never news.
            step = abs(x - prev)
            if tiny < step < quantum:
                quantum = step
            floor = 0.5 * quantum if quantum < INF else 0.0

            # spike / dip: against the rolling median of the readings before this one
            m = len(srt)
            med = srt[m >> 1] if m & 1 else 0.5 * (srt[m >> 1] + srt[(m >> 1) - 1])
            r = x - med
            s_spike = abs(r) / ((res if res > floor else floor) + tiny) if m >= 5 else 0.0
            if in_band:
                held &= ~RANGE_BIT
            elif air and s_spike > REARM * h_spike:
                # An impossible reading that arrives as a jump (an error code, not a stream that
                # is no temperature) says nothing about the weather: flag its onset, learn
                # nothing from it, and judge the next reading against the last possible one.
                fired = monitored and not held & RANGE_BIT
                held |= RANGE_BIT
                append(RANGE if fired else QUIET)
                continue
            cap = CLIP * res if res > 0.0 else abs(r)
            res += ((abs(r) if abs(r) < cap else cap) - res) * a_noise

            # noise burst and the step scales
            cap = CLIP * sd if sd > 0.0 else step
            sd_prev = sd if sd > floor else floor
            sd += ((step if step < cap else cap) - sd) * a_noise
            sd_fast += (step - sd_fast) * (a_burst if n > BURST_READINGS else 1.0 / (n - 1))
            s_noise = log((sd_fast + tiny) / (sd_prev + tiny)) if n > BURST_READINGS else 0.0

            # shift: the mean of the last AFTER readings against the trend of the BEFORE
            # readings ahead of them (a front's ramp is extrapolated; a step is not)
            y = (med + cap if r > cap else med - cap if r < -cap else x) - base
            s_shift = 0.0
            if held & ALL_TESTS and n < quiet + SETTLE_READINGS:
                ring.clear()  # a fault still being reported must not become the trend
            if len(ring) < ring_size:
                ring.append(y)
                if len(ring) == ring_size:
                    pos = 0
                    st0, st1, sb, sa = _sums(ring, pos)
                    # Until the device shows its own, its weather is assumed twice as
                    # restless as white noise, worth a minute of readings.
                    if ksteps == 0:
                        sscale, ksteps = 2.0 * STEP_FLOOR * sd, STEP_PRIOR_READINGS
            else:
                y_old = ring[pos]
                y_b = ring[(pos + TREND) % ring_size]  # leaves `before` for `trend`
                y_a = ring[(pos + TREND + BEFORE) % ring_size]  # leaves `after` for `before`
                st1 += (TREND - 1) * y_b - st0 + y_old
                st0 += y_b - y_old
                sb += y_a - y_b
                sa += y - y_a
                ring[pos] = y
                pos = (pos + 1) % ring_size
                slope = (st1 - _J_MEAN * st0) / _J_VAR
                gap_step = sa / AFTER - sb / BEFORE - slope * _REACH
                floor = STEP_FLOOR * (sd if sd > floor else floor)
                s_shift = abs(gap_step) / ((sscale if sscale > floor else floor) + tiny)
                cap = CLIP * sscale if sscale > 0.0 else abs(gap_step)
                ksteps += 1
                a_s = 1.0 / ksteps if ksteps < STEP_SCALE_READINGS else 1.0 / STEP_SCALE_READINGS
                if not a_noise:
                    a_s = 0.0
                sscale += ((abs(gap_step) if abs(gap_step) < cap else cap) - sscale) * a_s
            if n % REBASE_READINGS == 0 and len(ring) == ring_size:
                st0, st1, sb, sa = _sums(ring, pos)

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

            # How often this device passes each reference level: its own tail, learnt slowly.
            a_tail = 1.0 / (TAIL_PRIOR_READINGS + (n if n < TAIL_READINGS else TAIL_READINGS))
            if held & ALL_TESTS:
                a_tail = 0.0  # a fault being reported is not the device's normal tail
            p_spike += ((s_spike > r_spike) - p_spike) * a_tail
            p_shift += ((s_shift > r_shift) - p_shift) * a_tail
            p_drift += ((s_drift > r_drift) - p_drift) * a_tail
            p_stuck += ((s_stuck > r_stuck) - p_stuck) * a_tail
            p_noise += ((s_noise > r_noise) - p_noise) * a_tail
            q_spike += ((s_spike > u_spike) - q_spike) * a_tail
            q_shift += ((s_shift > u_shift) - q_shift) * a_tail
            q_drift += ((s_drift > u_drift) - q_drift) * a_tail
            q_stuck += ((s_stuck > u_stuck) - q_stuck) * a_tail
            q_noise += ((s_noise > u_noise) - q_noise) * a_tail
            if n % RELINE_READINGS == 0:
                passes = [p_spike, q_spike, p_shift, q_shift, p_drift, q_drift, p_stuck, q_stuck]
                passes += [p_noise, q_noise]
                offsets = budget.lowered(offsets, t - cal_ts if cal_ts else 0.0, fa)
                cal_ts = t
                h_spike, h_shift, h_drift, h_stuck, h_noise = reline(fa, dt, passes, offsets)

            # The decision: the armed test furthest past its line fires; held tests re-arm low.
            stats = (s_spike, s_shift, s_drift, s_stuck, s_noise)
            hs = (h_spike, h_shift, h_drift, h_stuck, h_noise)
            if trace is not None and monitored:
                trace.append((t, *stats, *hs))
            best, ratio = -1, 0.0
            settled = n >= quiet
            for k in range(5):
                q = stats[k] / hs[k]
                if held >> k & 1:
                    if q < REARM and settled:
                        held &= ~(1 << k)
                elif q > ratio:
                    best, ratio = k, q
            score = 1.0 - exp(-0.6931471805599453 * ratio) if monitored else 0.0
            if not monitored or ratio < 1.0:
                append(Verdict(score, False))
                continue
            # One fault, one onset: every test re-arms only once it calms down, and not before
            # the step test has seen the whole fault's first minute.
            held |= ALL_TESTS
            quiet = n + AFTER
            ring.clear()  # a fault inside the trend window would bend the trend: start afresh
            kind = ("spike" if r > 0.0 else "dip", "shift", "drift", "stuck", "noise")[best]
            # A burst moves the step means too; a step barely moves the noise ratio: call it noise.
            kind = "noise" if best == SHIFT and s_noise > REARM * h_noise else kind
            passes = [p_spike, q_spike, p_shift, q_shift, p_drift, q_drift, p_stuck, q_stuck]
            passes += [p_noise, q_noise]
            append(Verdict(score, True, kind, severity(best, stats[best], hs[best], passes)))
            offsets = budget.raised(offsets, best)  # this device's own onset rate, per test
            h_spike, h_shift, h_drift, h_stuck, h_noise = reline(fa, dt, passes, offsets)
        self.n, self.first_ts, self.last_ts, self.prev, self.dt = n, first_ts, last_ts, prev, dt
        self.sd, self.sd_fast, self.res, self.quantum = sd, sd_fast, res, quantum
        self.base, self.sscale = base, sscale
        self.st0, self.st1, self.sb, self.sa = st0, st1, sb, sa
        self.ring, self.pos, self.ksteps, self.quiet = ring, pos, ksteps, quiet
        self.fast, self.slow, self.dscale = fast, slow, dscale
        self.reps, self.steps, self.nlp, self.run = reps, steps, nlp, run
        self.outside, self.held, self.offsets, self.cal_ts = outside, held, offsets, cal_ts
        self.lines = [h_spike, h_shift, h_drift, h_stuck, h_noise]
        self.passes = [p_spike, q_spike, p_shift, q_shift, p_drift, q_drift, p_stuck, q_stuck]
        self.passes += [p_noise, q_noise]
        return out

    def to_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {"detector": self.name, "version": self.state_version}
        state.update({k: encode_float(getattr(self, k)) for k in _FLOATS})
        state.update({k: getattr(self, k) for k in _INTS})
        state["window"] = list(self.window)
        state["ring"] = list(self.ring)
        state["lines"] = list(self.lines)
        state["passes"] = list(self.passes)
        state["offsets"] = list(self.offsets)
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
        detector.ring = [float(v) for v in state["ring"]]
        detector.lines = [float(v) for v in state["lines"]]
        detector.passes = [float(v) for v in state["passes"]]
        detector.offsets = [float(v) for v in state["offsets"]]
        return detector
