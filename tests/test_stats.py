"""Paired bootstrap over seeds and queries: constructed cases with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from aea import stats as S
from aea.errors import AEAError


def aps(seed: int, n: int = 200) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 100, n)


def test_identical_runs_give_a_zero_width_interval_at_zero_and_inconclusive():
    diffs = [aps(s) - aps(s) for s in range(3)]
    iv = S.paired_interval(diffs)
    assert (iv.diff, iv.low, iv.high) == (0.0, 0.0, 0.0)
    assert iv.status == S.INCONCLUSIVE


def test_every_ap_raised_holds_and_lowered_fails():
    up = [(aps(s) + 2.0) - aps(s) for s in range(3)]
    assert S.paired_interval(up).status == S.HOLDS
    assert S.paired_interval(up).diff == pytest.approx(2.0)
    down = [(aps(s) - 0.5) - aps(s) for s in range(3)]
    assert S.paired_interval(down).status == S.FAILS


def test_bootstrap_is_seeded_and_reproducible():
    rng = np.random.default_rng(7)
    diffs = [rng.normal(0.3, 5.0, 300) for _ in range(4)]
    a, b = S.paired_interval(diffs), S.paired_interval(diffs)
    assert a == b
    other = S.paired_interval(diffs, seed=1)
    assert (other.low, other.high) != (a.low, a.high)
    assert other.diff == a.diff


def test_interval_matches_the_analytic_spread_for_one_seed():
    """One seed: the bootstrap sd of a mean of n iid values ~ sd/sqrt(n); the 95% interval ~ +-1.96 of it."""
    d = np.random.default_rng(3).normal(1.0, 10.0, 2000)
    iv = S.paired_interval([d], draws=4000)
    half = 1.96 * d.std() / np.sqrt(len(d))
    assert iv.high - iv.low == pytest.approx(2 * half, rel=0.1)
    assert iv.diff == pytest.approx(d.mean())
    assert iv.status == S.INCONCLUSIVE  # one seed never decides: training noise is not represented


def test_seed_to_seed_spread_widens_the_interval():
    """Query noise equal, but seeds that disagree (training noise) give a wider interval than seeds that agree."""
    base = np.random.default_rng(0).normal(0, 1, 500)
    agree = [base + 1.0 for _ in range(5)]
    disagree = [base + shift for shift in (-3.0, 5.0, 1.0, -1.0, 3.0)]  # same mean 1.0
    narrow, wide = S.paired_interval(agree), S.paired_interval(disagree)
    assert narrow.diff == pytest.approx(wide.diff)
    assert wide.high - wide.low > 5 * (narrow.high - narrow.low)
    assert narrow.status == S.HOLDS and wide.status == S.INCONCLUSIVE


def test_per_query_values_and_differences_by_metric():
    a = {"query": [0, 2, 5], "ap_official": [1.0, 0.5, 0.25], "ap_noninterp": [1.0, 0.5, 0.2],
         "first_match_rank": [1, 3, 1]}
    b = {"query": [0, 2, 5], "ap_official": [0.5, 0.5, 0.25], "ap_noninterp": [0.5, 0.5, 0.2],
         "first_match_rank": [2, 1, 1]}
    np.testing.assert_allclose(S.paired_differences(a, b, "mAP"), [50.0, 0.0, 0.0])
    np.testing.assert_allclose(S.paired_differences(a, b, "rank1"), [100.0, -100.0, 0.0])
    with pytest.raises(AEAError, match="different queries"):
        S.paired_differences(a, {**b, "query": [0, 2, 6]}, "mAP")
    with pytest.raises(AEAError, match="rank1, mAP"):
        S.per_query_values(a, "rank5")


def test_bad_inputs_are_refused():
    with pytest.raises(AEAError, match="at least one seed"):
        S.paired_interval([])
    with pytest.raises(AEAError, match="finite"):
        S.paired_interval([np.array([1.0, np.nan])])
