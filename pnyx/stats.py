"""Point estimates with confidence intervals: the one shape every summary uses.

An :class:`Estimate` is a ``value`` with its interval ``[low, high]`` and the sample
size ``n`` it rests on; in JSON it is ``{"value", "low", "high", "n"}``, an undefined
or non-finite number written as ``null``. :func:`wilson` estimates a binomial
proportion (Wilson score interval); :func:`bootstrap_ratio` a ratio of sums over
clusters (percentile bootstrap resampling whole clusters); :func:`seed_mean` a mean over
independent training runs (Student-t interval, clipped to a rate's range).
:func:`format_estimate`, :func:`format_interval` and :func:`format_number` write them in
reports, ``n/a`` where undefined.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from pnyx.errors import PnyxError

#: Most bootstrap resamples a config's ``bootstrap`` field may ask for.
MAX_BOOTSTRAP = 100_000


def finite_or_none(x) -> float | None:
    """``x`` as a float, or ``None`` when it is ``None``, NaN or infinite."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


@dataclass(frozen=True)
class Estimate:
    """``value`` with its confidence interval ``[low, high]``; ``n`` is the sample size
    behind it (trials, or the denominator of a ratio).

    Numbers are floats, or ``None`` where undefined: the constructor turns NaN and
    infinities into ``None``, so an Estimate can be built from raw float results.
    """

    value: float | None
    low: float | None
    high: float | None
    n: int

    def __post_init__(self):
        for name in ("value", "low", "high"):
            object.__setattr__(self, name, finite_or_none(getattr(self, name)))
        object.__setattr__(self, "n", int(self.n))

    @classmethod
    def undefined(cls, n: int = 0) -> Estimate:
        """No value and no interval, from ``n`` observations."""
        return cls(None, None, None, n)

    def to_dict(self) -> dict:
        """``{"value", "low", "high", "n"}``, JSON-safe (undefined numbers are ``None``)."""
        return {"value": self.value, "low": self.low, "high": self.high, "n": self.n}


def _as_dict(stat: Any) -> dict:
    """``{value, low, high}`` of an Estimate, its dict form, or any object with those attributes."""
    return stat if isinstance(stat, dict) else {k: getattr(stat, k) for k in ("value", "low", "high")}


def format_number(x, digits: int = 3) -> str:
    """``x`` to ``digits`` decimals; ``n/a`` when it is ``None``, NaN or infinite."""
    x = finite_or_none(x)
    return "n/a" if x is None else f"{x:.{digits}f}"


def format_interval(stat: Estimate | dict, digits: int = 3) -> str:
    """``[low, high]`` of an Estimate or its dict form, to ``digits`` decimals; ``n/a`` for an undefined bound."""
    stat = _as_dict(stat)
    return f"[{format_number(stat['low'], digits)}, {format_number(stat['high'], digits)}]"


def format_estimate(stat: Estimate | dict, digits: int = 3) -> str:
    """``value [low, high]`` of an Estimate or its dict form, to ``digits`` decimals; ``n/a``
    for an undefined value, and for an undefined bound in its place."""
    stat = _as_dict(stat)
    if finite_or_none(stat["value"]) is None:
        return "n/a"
    return f"{format_number(stat['value'], digits)} {format_interval(stat, digits)}"


def overlaps_zero(interval: Estimate | dict) -> bool | None:
    """Whether an interval contains 0; ``None`` when a bound is undefined."""
    interval = _as_dict(interval)
    low, high = interval["low"], interval["high"]
    if low is None or high is None:
        return None
    return low <= 0.0 <= high


def wilson(successes: int, trials: int, confidence: float = 0.95) -> Estimate:
    """``successes / trials`` with its Wilson score interval (Wilson, JASA 22, 1927), which
    stays inside [0, 1] and is informative even at 0 or ``trials`` successes; undefined
    (``n = 0``) when ``trials`` is 0."""
    successes, trials = int(successes), int(trials)
    if not 0 <= successes <= trials:
        raise PnyxError(f"need 0 <= successes <= trials, got successes={successes}, trials={trials}")
    if trials == 0:
        return Estimate.undefined()
    from scipy.stats import binomtest  # scipy.stats takes most of a second to import

    ci = binomtest(successes, trials).proportion_ci(confidence_level=confidence, method="wilson")
    return Estimate(successes / trials, ci.low, ci.high, trials)


def bootstrap_ratio(num, den, *, n_boot: int = 1000, seed: int = 0, confidence: float = 0.95) -> Estimate:
    """``sum(num) / sum(den)`` over clusters (one entry per cluster), with a percentile
    bootstrap interval from ``n_boot`` resamples of the clusters with replacement, seeded
    by ``seed``; resamples whose denominator sums to 0 are left out. ``n`` is
    ``sum(den)`` rounded; undefined when it is 0.

    Hand-written because ``scipy.stats.bootstrap`` cannot leave out zero-denominator
    resamples (its interval would turn NaN) and refuses a single cluster.
    """
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    total = float(den.sum())
    if total == 0:
        return Estimate.undefined()
    value = float(num.sum()) / total
    idx = np.random.default_rng(seed).integers(0, len(den), size=(n_boot, len(den)))
    b_num, b_den = num[idx].sum(axis=1), den[idx].sum(axis=1)
    ratios = b_num[b_den > 0] / b_den[b_den > 0]
    tail = (100 - 100 * confidence) / 2
    low, high = np.percentile(ratios, [tail, 100 - tail]) if len(ratios) else (None, None)
    return Estimate(value, low, high, int(round(total)))


def seed_mean(values, bounds: tuple[float, float] | None = None) -> tuple[Estimate, float | None]:
    """The mean of per-seed values with its Student-t 95% interval (``n`` = seeds), and the
    sample standard deviation across seeds; interval and deviation undefined for one seed.
    ``None`` and non-finite values are left out. With ``bounds`` (a rate's ``(0, 1)``), the
    interval is clipped to that range."""
    x = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=np.float64)
    if len(x) == 0:
        return Estimate.undefined(), None
    mean = float(x.mean())
    if len(x) == 1:
        return Estimate(mean, None, None, 1), None
    from scipy.stats import t

    std = float(x.std(ddof=1))
    half = float(t.ppf(0.975, len(x) - 1)) * std / np.sqrt(len(x))
    low, high = mean - half, mean + half
    if bounds is not None:
        low, high = max(low, bounds[0]), min(high, bounds[1])
    return Estimate(mean, low, high, len(x)), std
