"""Bootstrap intervals over passages (the unit that is sampled), for ratios of sums and for paired differences.

Each passage contributes a numerator (e.g. questions answered correctly, averaged over seeds and self-edits) and a
denominator (its number of questions); a row's value is sum(num) / sum(den), i.e. the mean over questions, and the
bootstrap resamples whole passages. Fixed seeds: the same inputs give the same interval.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

RESAMPLES = 2000
LEVEL = 0.95


@dataclass(frozen=True)
class Interval:
    value: float
    lo: float
    hi: float

    def excludes(self, x: float = 0.0) -> bool:
        return not math.isnan(self.lo) and (self.lo > x or self.hi < x)

    def to_dict(self) -> dict:
        return {"value": self.value, "lo": self.lo, "hi": self.hi}


NAN = Interval(math.nan, math.nan, math.nan)


def _ratio(num: np.ndarray, den: np.ndarray) -> float:
    total = den.sum()
    return float(num.sum() / total) if total > 0 else math.nan


def _indices(n: int, resamples: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


def _percentiles(values: np.ndarray, level: float) -> tuple[float, float]:
    values = values[~np.isnan(values)]
    if values.size == 0:
        return math.nan, math.nan
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(values, [tail, 100 - tail])
    return float(lo), float(hi)


def ratio_interval(num: Sequence[float], den: Sequence[float], resamples: int = RESAMPLES, level: float = LEVEL,
                   seed: int = 0) -> Interval:
    """sum(num) / sum(den) with a percentile bootstrap interval over the units (passages)."""
    n_arr, d_arr = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    if n_arr.size == 0 or d_arr.sum() <= 0:
        return NAN
    idx = _indices(n_arr.size, resamples, seed)
    nums, dens = n_arr[idx].sum(axis=1), d_arr[idx].sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        boots = np.where(dens > 0, nums / np.where(dens > 0, dens, 1), np.nan)
    return Interval(_ratio(n_arr, d_arr), *_percentiles(boots, level))


def paired_interval(num_a: Sequence[float], num_b: Sequence[float], den: Sequence[float],
                    resamples: int = RESAMPLES, level: float = LEVEL, seed: int = 0) -> Interval:
    """(sum(a) - sum(b)) / sum(den) over the same passages, resampling passages jointly (paired bootstrap)."""
    diff = np.asarray(num_a, dtype=float) - np.asarray(num_b, dtype=float)
    return ratio_interval(diff, den, resamples, level, seed)


def mean_interval(values: Sequence[float], resamples: int = RESAMPLES, level: float = LEVEL, seed: int = 0) -> Interval:
    """Plain mean over units (NaNs dropped) with a bootstrap interval."""
    vals = [v for v in values if not math.isnan(v)]
    return ratio_interval(vals, [1.0] * len(vals), resamples, level, seed)
