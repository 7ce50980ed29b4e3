"""The default detector: several causal surprise features, each judged against its own record."""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

from weatherpipe.detect.base import Detector, Verdict

# Feature order in the state arrays.
LEVEL, JUMP, VOLATILITY = 0, 1, 2
FEATURES = 3


class SentinelDetector(Detector):
    """Flags the onset of a reading whose surprise beats the decayed record of past surprises."""

    name = "sentinel"

    def __init__(
        self,
        slow: float = 0.01,
        fast: float = 0.1,
        decay_half_life: float = 2000.0,
        margin: float = 1.0,
        burn_in: int = 100,
        warmup: int = 300,
        refractory: int = 100,
    ) -> None:
        self.slow = slow
        self.fast = fast
        self.decay = 0.5 ** (1.0 / decay_half_life)
        self.margin = margin
        self.burn_in = burn_in
        self.warmup = warmup
        self.refractory = refractory
        self.seen = 0
        self.prev = 0.0
        self.mean = 0.0
        self.dev = 0.0
        self.diff_slow = 0.0
        self.diff_fast = 0.0
        self.lo = math.inf
        self.hi = -math.inf
        self.record = [0.0] * FEATURES
        self.quiet = 0  # rows left in the refractory period after an onset

    def score_one(self, ts: float, value: float) -> float:
        return copy.deepcopy(self).process_one(ts, value).score

    def learn_one(self, ts: float, value: float) -> None:
        self.process_one(ts, value)

    def process_one(self, ts: float, value: float) -> Verdict:
        return self.process_many([ts], [value])[0]

    def process_many(self, ts: Sequence[float], values: Sequence[float]) -> list[Verdict]:
        slow, fast, decay, margin = self.slow, self.fast, self.decay, self.margin
        burn_in, warmup, refractory = self.burn_in, self.warmup, self.refractory
        seen, prev, mean, dev = self.seen, self.prev, self.mean, self.dev
        diff_slow, diff_fast, lo, hi, quiet = (
            self.diff_slow, self.diff_fast, self.lo, self.hi, self.quiet
        )
        r_level, r_jump, r_vol = self.record
        out: list[Verdict] = []
        append = out.append
        for x in values:
            if seen == 0:
                prev = mean = lo = hi = x
            lo = x if x < lo else lo
            hi = x if x > hi else hi
            tiny = 1e-6 * (hi - lo) + 1e-12
            jump = abs(x - prev)
            z_level = abs(x - mean) / (dev + tiny)
            z_jump = jump / (diff_slow + tiny)
            diff_fast += fast * (jump - diff_fast)
            z_vol = abs(math.log((diff_fast + tiny) / (diff_slow + tiny)))
            ratio = max(
                z_level / (r_level * margin + tiny),
                z_jump / (r_jump * margin + tiny),
                z_vol / (r_vol * margin + tiny),
            )
            score = 1.0 - 0.5 ** ratio
            onset = ratio >= 1.0 and seen >= warmup and quiet == 0
            if onset:
                quiet = refractory
            elif quiet:
                quiet -= 1
            append(Verdict(score, onset))
            if seen >= burn_in:
                r_level = max(r_level * decay, z_level)
                r_jump = max(r_jump * decay, z_jump)
                r_vol = max(r_vol * decay, z_vol)
            dev += slow * (abs(x - mean) - dev)
            mean += slow * (x - mean)
            diff_slow += slow * (jump - diff_slow)
            prev = x
            seen += 1
        self.seen, self.prev, self.mean, self.dev = seen, prev, mean, dev
        self.diff_slow, self.diff_fast, self.lo, self.hi, self.quiet = (
            diff_slow, diff_fast, lo, hi, quiet
        )
        self.record = [r_level, r_jump, r_vol]
        return out
