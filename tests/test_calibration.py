"""The 95% of every verdict, proven: null and power simulations through aea.stats's own verdict function.

Bound (stated in docs/statistics.md): over 2,000 simulated comparisons per scenario with a true difference of 0,
the count of false decisions (holds or fails) at 95% must lie in the central 99.9% binomial interval of a 5%
rate, 69..133 (3.45% to 6.65%), and at the family level 1 - 0.05/32 at most 10 (the 99.95% quantile of a
0.16% rate); a true +3 points at 10 seeds with seed SD 1 must hold in at least 80% of them.
"""

from __future__ import annotations

import numpy as np

from aea import calibration as C
from aea import stats as S


def test_the_verdicts_error_rates_are_what_their_labels_say():
    table = C.calibration_table()
    assert len(table) == len(C.NULL_GRID) + 1
    assert set(table["n_seeds"]) == {2, 3, 5, 10} and set(table["train_sd"]) == {0.0, 1.0, 4.0}
    assert set(table["n_queries"]) == {300, 3000}
    bad = table[~table["within_bound"]]
    assert bad.empty, f"verdict procedure outside its bound:\n{bad.to_string()}"
    null = table[table["truth"] == 0.0]
    assert null["decision_rate"].between(0.0345, 0.0665).all()
    power = table[table["truth"] > 0].iloc[0]
    assert power["holds"] >= 0.8 * power["sims"]


def _normal_quantile_interval(per_seed, levels):
    """A miscalibrated procedure: the per-seed mean +- z SE (normal quantiles where t is due), as a percentile
    bootstrap over few seeds effectively is."""
    means = S.seed_means(per_seed)
    n = len(means)
    se = means.std(ddof=1) / np.sqrt(n)
    from scipy.stats import norm

    return [S.Interval(float(means.mean()), float(means.mean() - norm.ppf(0.5 + lv / 2) * se),
                       float(means.mean() + norm.ppf(0.5 + lv / 2) * se), n, len(per_seed[0])) for lv in levels]


def test_the_check_catches_a_miscalibrated_interval():
    """The calibration check can fail: normal quantiles on 3 seeds with training noise decide falsely far more
    than 5% of the time (t(2) is 4.30, z is 1.96), and the table says so."""
    scenarios = [C.Scenario(3, 4.0, 300), C.Scenario(10, 4.0, 300)]
    table = C.calibration_table(sims=1000, procedure=_normal_quantile_interval, scenarios=scenarios)
    three, ten = table.to_dict("records")
    assert not three["within_bound"] and three["decision_rate"] > 0.15
    assert ten["decision_rate"] > 0.06  # still too many at 10 seeds


def test_simulated_comparisons_have_the_stated_structure():
    """Truth on the test set exactly as set; seeds differ by their training effect; queries shared."""
    scenario = C.Scenario(4, 3.0, 2000, truth=1.5)
    d = next(C.simulated_comparisons(scenario, 1, np.random.default_rng(0)))
    assert d.shape == (4, 2000)
    residual = d - d.mean(axis=1, keepdims=True)
    shared = np.corrcoef(residual[0], residual[1])[0, 1]
    assert 0.05 < shared < 0.15  # correlation 0.1 between two seeds' per-query differences
    many = np.stack([x.mean(axis=1) for x in C.simulated_comparisons(scenario, 3000, np.random.default_rng(1))])
    assert abs(many.mean() - 1.5) < 0.1
    assert abs(many.std() - np.sqrt(9.0 + 0.9 * 400 / 2000)) < 0.15  # training SD 3 and the seed's own query noise
