"""Paired t intervals over seeds, seeds needed, equivalence, Wilcoxon, Holm: cases with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aea import stats as S
from aea.errors import AEAError
from aea.tables.claims import interval_text


def aps(seed: int, n: int = 200) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 100, n)


def test_identical_runs_give_a_zero_width_interval_at_zero_and_inconclusive():
    diffs = [aps(s) - aps(s) for s in range(3)]
    iv = S.paired_interval(diffs)
    assert (iv.diff, iv.low, iv.high, iv.sd) == (0.0, 0.0, 0.0, 0.0)
    assert iv.status == S.INCONCLUSIVE and iv.p_value == 1.0 and iv.seeds_needed is None


def test_the_interval_is_t_on_the_per_seed_means_computed_by_hand():
    """Seeds whose mean differences are 1, 2 and 3: mean 2, SD 1, t(2, 0.975) = 4.302653 -> 2 +- 4.302653/sqrt(3)."""
    rng = np.random.default_rng(0)
    per_seed = []
    for mean in (1.0, 2.0, 3.0):
        q = rng.normal(0.0, 10.0, 300)
        per_seed.append(q - q.mean() + mean)  # query noise of any size: only each seed's mean enters
    iv = S.paired_interval(per_seed)
    half = 4.302653 / math.sqrt(3)
    assert iv.diff == pytest.approx(2.0)
    assert (iv.low, iv.high) == (pytest.approx(2.0 - half), pytest.approx(2.0 + half))
    assert iv.sd == pytest.approx(1.0) and iv.df == 2 and iv.n_queries == 300
    assert iv.status == S.INCONCLUSIVE
    assert iv.p_value == pytest.approx(0.0741799, abs=1e-6)  # t = 2 / (1/sqrt(3)) = 3.4641 on 2 df


def test_every_ap_raised_holds_and_lowered_fails():
    up = [(aps(s) + 2.0 + 0.1 * s) - aps(s) for s in range(3)]
    assert S.paired_interval(up).status == S.HOLDS
    assert S.paired_interval(up).diff == pytest.approx(2.1)
    down = [(aps(s) - 0.5 - 0.1 * s) - aps(s) for s in range(3)]
    assert S.paired_interval(down).status == S.FAILS


def test_one_seed_has_no_interval_and_never_decides():
    iv = S.paired_interval([np.full(50, 30.0)])
    assert iv.diff == 30.0 and math.isnan(iv.low) and math.isnan(iv.high)
    assert iv.status == S.INCONCLUSIVE and iv.seeds_needed is None
    row = {"diff": iv.diff, "low": iv.low, "high": iv.high, "n_seeds": iv.n_seeds}
    assert interval_text(row) == "+30.0 [no interval] (1)"  # what the claims tables print


def test_seed_to_seed_spread_widens_the_interval():
    """Query noise equal, but seeds that disagree (training noise) give a wider interval than seeds that agree."""
    base = np.random.default_rng(0).normal(0, 1, 500)
    agree = [base + 1.0 + 0.01 * s for s in range(5)]
    disagree = [base + shift for shift in (-3.0, 5.0, 1.0, -1.0, 3.1)]
    narrow, wide = S.paired_interval(agree), S.paired_interval(disagree)
    assert narrow.diff == pytest.approx(wide.diff)
    assert wide.high - wide.low > 5 * (narrow.high - narrow.low)
    assert narrow.status == S.HOLDS and wide.status == S.INCONCLUSIVE


def test_family_level_widens_with_the_number_of_comparisons():
    per_seed = [np.full(10, v) for v in (1.0, 2.0, 3.0)]
    single, family = S.paired_intervals(per_seed, (S.LEVEL, S.family_level(32)))
    assert family.low < single.low and family.high > single.high
    assert S.family_level(1) == S.LEVEL and S.family_level(32) == pytest.approx(1 - 0.05 / 32)
    assert S.t_quantile(2, S.family_level(32)) == pytest.approx(25.3, abs=0.05)  # 3 seeds, k = 32


@pytest.mark.parametrize(("effect", "expected"), [(1.0, 10), (0.5, 34), (2.0, 5)])
def test_seeds_needed_matches_the_one_sample_t_power_tables(effect, expected):
    """Two-sided one-sample t test at 5%, 80% power: n = 10 for d = 1, 34 for d = 0.5 (Cohen's tables), 5 for 2."""
    assert S.seeds_needed(effect * 3.0, 3.0) == expected
    assert S.seeds_needed(-effect, 1.0) == expected  # the direction does not matter


def test_seeds_needed_is_confirmed_by_simulation():
    """At the returned n the simulated decision rate reaches 80%; one seed fewer it does not."""
    n = S.seeds_needed(1.2, 2.0)
    rng = np.random.default_rng(5)

    def rate(k: int) -> float:
        means = rng.normal(1.2, 2.0, (20000, k))
        t = means.mean(axis=1) / (means.std(axis=1, ddof=1) / math.sqrt(k))
        return float(np.mean(np.abs(t) > S.t_quantile(k - 1, S.LEVEL)))

    assert rate(n) >= 0.79 and rate(n - 1) < 0.80


def test_seeds_needed_edge_cases():
    assert S.seeds_needed(0.0, 1.0) is None
    assert S.seeds_needed(1.0, math.nan) is None
    assert S.seeds_needed(1.0, 0.0) == S.MIN_SEEDS
    assert S.seeds_needed(0.01, 10.0) is None  # beyond MAX_SEEDS


def test_stratified_interval_pools_the_within_stratum_spread_by_hand():
    """Strata {1, 2, 3} and {5, 7}: mean of means (2 + 6) / 2 = 4; pooled SD sqrt((2 + 2) / 3);
    SE = pooled sqrt(1/3 + 1/2) / 2; t on 3 df."""
    iv = S.stratified_intervals([[1.0, 2.0, 3.0], [5.0, 7.0]], (0.95,))[0]
    pooled = math.sqrt(4.0 / 3.0)
    se = pooled * math.sqrt(1 / 3 + 1 / 2) / 2
    assert iv.diff == pytest.approx(4.0) and iv.df == 3 and iv.se == pytest.approx(se)
    assert iv.low == pytest.approx(4.0 - 3.182446 * se, abs=1e-5)
    one_each = S.stratified_intervals([[1.0], [2.0]], (0.95,))[0]
    assert math.isnan(one_each.low) and one_each.status == S.INCONCLUSIVE


def test_equivalence_by_two_one_sided_tests():
    def interval(low: float, high: float, n: int = 5) -> S.Interval:
        return S.Interval((low + high) / 2, low, high, n, 100)

    assert S.equivalence_status(interval(-1.0, 2.5), 3.0) == S.HOLDS
    assert S.equivalence_status(interval(3.5, 6.0), 3.0) == S.FAILS
    assert S.equivalence_status(interval(-8.0, -3.2), 3.0) == S.FAILS
    assert S.equivalence_status(interval(1.0, 4.0), 3.0) == S.INCONCLUSIVE
    assert S.equivalence_status(interval(-1.0, 1.0, n=1), 3.0) == S.INCONCLUSIVE


def test_holm_and_wilcoxon_by_hand():
    assert S.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert S.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1
    adjusted = S.holm([0.01, math.nan])  # a test not evaluated counts as p = 1: m stays 2
    assert adjusted[0] == pytest.approx(0.02) and math.isnan(adjusted[1])
    assert S.wilcoxon_p(np.arange(1, 11)) == pytest.approx(2 / 1024)  # exact: all 10 signs positive
    assert S.wilcoxon_p([-1, *range(2, 11)]) == pytest.approx(4 / 1024)
    assert S.wilcoxon_p(np.zeros(10)) == 1.0 and math.isnan(S.wilcoxon_p([]))


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
    with pytest.raises(AEAError, match=r"\(0, 1\)"):
        S.paired_intervals([np.ones(3), np.ones(3)], (1.5,))
