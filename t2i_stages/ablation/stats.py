"""Seed statistics for a study: bootstrap intervals and permutation tests (scipy.stats).

Why these: a study has a handful of seeds per variant (five in issue 21), too few to trust a
normal approximation. The percentile bootstrap of the mean needs no distributional assumption,
and a two-sided permutation test of the difference of means is exact at these sizes (5 + 5
seeds have 252 splits, all enumerated), so its p-value is what the seeds can support and no
more: with 5 + 5 seeds the smallest possible p is 2/252 = 0.008.

Both are deterministic (a fixed generator seed), so a table rebuilt from the same runs gives the
same numbers.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
RESAMPLES = 9999
_SEED = 0


def _interval(result: Any) -> tuple[float, float] | None:
    """A scipy bootstrap result's interval; None where it is not finite (degenerate resamples)."""
    low, high = result.confidence_interval
    if not (math.isfinite(low) and math.isfinite(high)):
        return None
    return float(low), float(high)


def bootstrap_mean_ci(
    values: Sequence[float], confidence: float = CONFIDENCE
) -> tuple[float, float] | None:
    """The percentile-bootstrap interval of the mean; None with fewer than two values.

    All values equal gives the degenerate interval (v, v). Cached on the values: a report asks
    for the same cell's interval in its table, its CSV and its chart.
    """
    return _bootstrap_mean_ci(tuple(map(float, values)), confidence)


@functools.lru_cache(maxsize=1024)
def _bootstrap_mean_ci(values: tuple[float, ...], confidence: float) -> tuple[float, float] | None:
    data = np.asarray(values, dtype=float)
    if data.size < 2:
        return None
    if np.all(data == data[0]):
        return float(data[0]), float(data[0])
    result = stats.bootstrap(
        (data,),
        np.mean,
        confidence_level=confidence,
        n_resamples=RESAMPLES,
        method="percentile",
        rng=np.random.default_rng(_SEED),
    )
    return _interval(result)


def _mean_difference(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(x, axis=axis) - np.mean(y, axis=axis)


def _abs_mean_difference(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.abs(_mean_difference(x, y, axis))


@dataclass(frozen=True)
class Comparison:
    """Variant a against variant b on one metric, over their seeds."""

    mean_a: float
    mean_b: float
    n_a: int
    n_b: int
    difference: float  # mean_a - mean_b
    interval: tuple[float, float] | None  # bootstrap interval of the difference
    p_value: float | None  # two-sided permutation test of the difference of means
    exact: bool  # every split enumerated (else a Monte Carlo estimate)


def compare(a: Sequence[float], b: Sequence[float], confidence: float = CONFIDENCE) -> Comparison:
    """Difference of means with its bootstrap interval and a two-sided permutation test.

    The p-value is the share of the splits of the pooled seeds into groups of the two sizes whose
    means are at least as far apart as observed (in either direction), every split enumerated
    where there are at most ``RESAMPLES`` of them.

    Needs at least one value on each side; the interval and the p-value need two on each.
    Cached on the values, like ``bootstrap_mean_ci``.
    """
    return _compare(tuple(map(float, a)), tuple(map(float, b)), confidence)


@functools.lru_cache(maxsize=1024)
def _compare(a: tuple[float, ...], b: tuple[float, ...], confidence: float) -> Comparison:
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.size == 0 or y.size == 0:
        raise ValueError("compare needs at least one value on each side")
    diff = float(x.mean() - y.mean())
    interval, p_value, exact = None, None, False
    if x.size >= 2 and y.size >= 2:
        splits = math.comb(x.size + y.size, x.size)
        exact = splits <= RESAMPLES
        if np.all(np.concatenate([x, y]) == x[0]):
            interval, p_value = (0.0, 0.0), 1.0
        else:
            boot = stats.bootstrap(
                (x, y),
                _mean_difference,
                confidence_level=confidence,
                n_resamples=RESAMPLES,
                method="percentile",
                rng=np.random.default_rng(_SEED),
            )
            interval = _interval(boot)
            test = stats.permutation_test(
                (x, y),
                _abs_mean_difference,  # two-sided: splits at least as far apart, either way
                permutation_type="independent",
                alternative="greater",
                n_resamples=RESAMPLES,
                vectorized=True,
                rng=np.random.default_rng(_SEED),
            )
            p_value = float(test.pvalue)
    return Comparison(
        float(x.mean()), float(y.mean()), int(x.size), int(y.size), diff, interval, p_value, exact
    )
