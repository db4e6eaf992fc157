"""Seed statistics of a study: bootstrap intervals of the mean and permutation tests."""

from __future__ import annotations

import itertools
import math
import statistics

import pytest

from t2i_stages.ablation import bootstrap_mean_ci, compare


def test_fully_separated_five_against_five_gives_the_smallest_exact_p():
    low = [1.0, 1.1, 1.2, 1.3, 1.4]
    high = [2.0, 2.1, 2.2, 2.3, 2.4]
    c = compare(high, low)
    assert c.exact
    assert c.p_value == pytest.approx(2 / math.comb(10, 5))  # 2/252: only the two extreme splits
    assert c.difference == pytest.approx(1.0)
    lo, hi = c.interval
    assert 0 < lo < 1.0 < hi


def test_the_permutation_p_value_is_the_share_of_splits_at_least_as_extreme():
    a, b = [3.0, 1.0, 4.0], [1.5, 2.5, 0.5, 2.0]
    pooled = a + b
    observed = abs(statistics.fmean(a) - statistics.fmean(b))
    extreme = 0
    splits = list(itertools.combinations(range(len(pooled)), len(a)))
    for idx in splits:
        x = [pooled[i] for i in idx]
        y = [pooled[i] for i in range(len(pooled)) if i not in idx]
        extreme += abs(statistics.fmean(x) - statistics.fmean(y)) >= observed - 1e-12
    assert compare(a, b).p_value == pytest.approx(extreme / len(splits))


def test_overlapping_seeds_are_not_significant():
    c = compare([1.0, 2.0, 3.0, 4.0, 5.0], [1.5, 2.5, 3.5, 4.5, 2.0])
    assert c.p_value > 0.5
    lo, hi = c.interval
    assert lo < 0 < hi


def test_the_bootstrap_interval_holds_the_mean_and_is_deterministic():
    values = [5.1, 6.3, 4.8, 7.0, 5.5]
    lo, hi = bootstrap_mean_ci(values)
    assert min(values) <= lo < statistics.fmean(values) < hi <= max(values)
    assert bootstrap_mean_ci(values) == (lo, hi)  # a rebuilt table gives the same numbers
    assert bootstrap_mean_ci([2.0, 2.0, 2.0]) == (2.0, 2.0)


def test_one_seed_gives_no_interval_and_no_test():
    assert bootstrap_mean_ci([3.0]) is None
    c = compare([3.0], [1.0, 2.0])
    assert c.difference == pytest.approx(1.5)
    assert c.interval is None and c.p_value is None
    with pytest.raises(ValueError, match="at least one value on each side"):
        compare([], [1.0])


def test_equal_seeds_on_both_sides_are_a_tie():
    c = compare([1.0, 1.0], [1.0, 1.0])
    assert c.difference == 0 and c.p_value == 1.0
