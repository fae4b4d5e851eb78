"""Every statistic behind a verdict: paired comparisons over seeds, their t interval, the seeds a comparison
needs, equivalence, Wilcoxon and Holm.

A comparison "A beats B" on one dataset and metric is a set of paired differences: for every seed both methods
were trained with, and every valid test query, ``d = metric_A(query) - metric_B(query)`` (AP for mAP, a 0/100
hit for rank-1).  The mean of ``d`` over one seed's queries is exactly the difference of the two runs' table
values at that seed; the estimate is the mean of those per-seed differences over the seeds.

Its interval is the t interval on the per-seed mean differences, ``mean +/- t(n-1, 1 - alpha/2) SD / sqrt(n)``
(with equal query counts the same as a random-effects meta-analysis with the Hartung-Knapp correction).  Each
per-seed mean already carries that seed's query noise, so queries are not resampled again; the per-query
records serve the exact pairing.  What the interval covers: the difference the two methods' training would give
*on this test set* (the benchmark's numbers are on its fixed test set), training randomness averaged out.  Its
95% is not taken on trust: ``aea.calibration`` simulates known truths through this very function, and
``tests/test_calibration.py`` fails when the false decision rate leaves its binomial bound.

The percentile bootstrap over seeds and queries used before (3 seeds: 10 distinct seed resamples, read at about
normal quantiles, where t(2) is 4.30) decided falsely 13-25% of the time at a 95% label; ``docs/statistics.md``
has both calibration tables.

Verdict of one comparison, in the claim's direction: ``holds`` when the whole interval lies above 0, ``fails``
when it lies wholly below 0, ``inconclusive`` when it contains 0 or fewer than ``MIN_SEEDS`` seeds ran (one seed
has no training spread to put in the interval; identical runs give the zero-width interval [0, 0]).  An
inconclusive comparison reports ``seeds_needed``: the seeds at which its observed difference, with its observed
seed SD, would be decided with 80% power.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from aea.errors import AEAError

HOLDS, FAILS, INCONCLUSIVE = "holds", "fails", "inconclusive"
NOT_EVALUABLE = "not evaluable"
MIN_SEEDS = 2  # with one seed the interval would hold no training noise
LEVEL = 0.95
POWER = 0.80  # the power ``seeds_needed`` asks for
MAX_SEEDS = 1000  # seeds_needed searches up to here; beyond it the difference is taken as undecidable


def _scipy_stats():
    """scipy.stats, imported on first use: the workflow imports this module while it parses (kept light)."""
    from scipy import stats

    return stats


@lru_cache(maxsize=4096)
def t_quantile(df: int, level: float) -> float:
    """Two-sided ``level`` quantile of Student's t with ``df`` degrees of freedom (cached: verdicts call it often)."""
    return float(_scipy_stats().t.ppf(0.5 + level / 2.0, df))


def family_level(k: int, level: float = LEVEL) -> float:
    """The per-comparison level of a Bonferroni family of ``k`` comparisons at ``level`` overall."""
    return level if k < 2 else 1.0 - (1.0 - level) / k


@dataclass(frozen=True)
class Interval:
    """Mean over seeds of the per-seed mean paired difference, with its t interval at ``level``.

    ``sd`` is the SD of the per-seed means (the pooled within-stratum SD for ``stratified_intervals``), ``se``
    the estimate's standard error on ``df`` degrees of freedom; all NaN, and ``low``/``high`` too, with fewer
    than ``MIN_SEEDS`` seeds."""

    diff: float
    low: float
    high: float
    n_seeds: int
    n_queries: int
    sd: float = math.nan
    level: float = LEVEL
    se: float = math.nan
    df: int = 0

    @property
    def p_value(self) -> float:
        """Two-sided t-test p-value of "the difference is 0"; NaN without an interval, 1 for identical runs."""
        if self.df < 1 or math.isnan(self.se):
            return math.nan
        if self.se == 0.0:
            return 1.0 if self.diff == 0.0 else 0.0
        return float(2.0 * _scipy_stats().t.sf(abs(self.diff) / self.se, self.df))

    @property
    def status(self) -> str:
        if self.n_seeds < MIN_SEEDS:
            return INCONCLUSIVE
        if self.low > 0:
            return HOLDS
        if self.high < 0:
            return FAILS
        return INCONCLUSIVE

    @property
    def seeds_needed(self) -> int | None:
        """Seeds to decide this difference at 80% power (its observed diff and seed SD as the truth); None when
        the observed difference is 0, the spread unknown, or more than ``MAX_SEEDS`` would be needed."""
        return seeds_needed(self.diff, self.sd, self.level)


def seed_means(per_seed: Sequence[np.ndarray]) -> np.ndarray:
    """Each seed's mean paired difference; refuses no seeds, empty seeds and non-finite values."""
    if not per_seed:
        raise AEAError("a paired comparison needs at least one seed with both runs")
    arrays = [np.asarray(d, dtype=np.float64) for d in per_seed]
    if any(len(a) == 0 for a in arrays) or any(not np.isfinite(a).all() for a in arrays):
        raise AEAError("paired differences must be non-empty and finite; re-run the evaluation of those runs")
    return np.array([a.mean() for a in arrays])


def t_intervals(means: Sequence[float], levels: Sequence[float], n_queries: int = 0) -> list[Interval]:
    """t intervals at each of ``levels`` on per-seed (per-unit) mean differences ``means``."""
    if not all(0.0 < level < 1.0 for level in levels):
        raise AEAError(f"confidence levels {list(levels)} must be in (0, 1)")
    m = np.asarray(means, dtype=np.float64)
    n = len(m)
    diff = float(m.mean())
    if n < MIN_SEEDS:
        return [Interval(diff, math.nan, math.nan, n, n_queries, math.nan, level) for level in levels]
    sd = float(m.std(ddof=1))
    return _intervals(diff, sd, sd / math.sqrt(n), n - 1, n, n_queries, levels)


def _intervals(diff: float, sd: float, se: float, df: int, n: int, n_queries: int,
               levels: Sequence[float]) -> list[Interval]:
    return [Interval(diff, diff - t_quantile(df, level) * se, diff + t_quantile(df, level) * se, n, n_queries, sd,
                     level, se, df) for level in levels]


def stratified_intervals(strata: Sequence[Sequence[float]], levels: Sequence[float],
                         n_queries: int = 0) -> list[Interval]:
    """t intervals on the mean of stratum means, conditional on the strata (e.g. units that share a generated
    data set): the pooled within-stratum variance on sum(n_i - 1) degrees of freedom, each stratum weighted
    equally.  The truth it covers is the difference on these strata, not on a population of them."""
    groups = [np.asarray(g, dtype=np.float64) for g in strata if len(g)]
    if not groups:
        raise AEAError("a stratified comparison needs at least one unit")
    k = len(groups)
    n = sum(len(g) for g in groups)
    diff = float(np.mean([g.mean() for g in groups]))
    df = n - k
    if df < 1:
        return [Interval(diff, math.nan, math.nan, n, n_queries, math.nan, level) for level in levels]
    pooled = float(math.sqrt(sum(((g - g.mean()) ** 2).sum() for g in groups) / df))
    se = pooled * math.sqrt(sum(1.0 / len(g) for g in groups)) / k
    return _intervals(diff, pooled, se, df, n, n_queries, levels)


def paired_interval(per_seed: Sequence[np.ndarray], *, level: float = LEVEL) -> Interval:
    """Interval of the mean over seeds of the mean over queries of the paired differences ``per_seed``.

    ``per_seed[s]`` holds seed s's per-query differences (A - B), one entry per valid query."""
    return paired_intervals(per_seed, (level,))[0]


def paired_intervals(per_seed: Sequence[np.ndarray], levels: Sequence[float]) -> list[Interval]:
    """``paired_interval`` at several confidence levels (e.g. 95% and family-adjusted)."""
    means = seed_means(per_seed)
    return t_intervals(means, levels, len(per_seed[0]))


def seeds_needed(diff: float, sd: float, level: float = LEVEL, power: float = POWER) -> int | None:
    """Smallest number of seeds whose two-sided t test at ``level`` decides a true difference ``diff`` with seed
    SD ``sd`` with probability >= ``power`` (noncentral t); None when ``diff`` is 0, ``sd`` unknown, or the answer
    exceeds ``MAX_SEEDS``.  A planning figure: the observed difference stands in for the true one."""
    if not (math.isfinite(diff) and math.isfinite(sd)) or diff == 0.0:
        return None
    if sd == 0.0:
        return MIN_SEEDS
    effect = abs(diff) / sd

    def achieved(n: int) -> float:
        crit = t_quantile(n - 1, level)
        nc = effect * math.sqrt(n)
        nct = _scipy_stats().nct
        far = float(nct.cdf(-crit, n - 1, nc))  # scipy returns NaN for this vanishing tail at large nc
        return float(nct.sf(crit, n - 1, nc)) + (far if math.isfinite(far) else 0.0)

    if achieved(MAX_SEEDS) < power:
        return None
    low, high = MIN_SEEDS, MAX_SEEDS  # power grows with n: bisect for the first n reaching it
    if achieved(low) >= power:
        return low
    while high - low > 1:
        mid = (low + high) // 2
        if achieved(mid) >= power:
            high = mid
        else:
            low = mid
    return high


def equivalence_status(interval: Interval, bound: float) -> str:
    """Two one-sided tests (TOST) at the interval's level (90% for a 5% test): ``holds`` (equivalent) when the
    interval lies within [-bound, +bound], ``fails`` (a difference beyond the bound) when it lies wholly outside,
    ``inconclusive`` otherwise or with fewer than ``MIN_SEEDS`` seeds."""
    if interval.n_seeds < MIN_SEEDS:
        return INCONCLUSIVE
    if -bound <= interval.low and interval.high <= bound:
        return HOLDS
    if interval.low > bound or interval.high < -bound:
        return FAILS
    return INCONCLUSIVE


def wilcoxon_p(differences: Sequence[float]) -> float:
    """Two-sided Wilcoxon signed-rank p-value of per-unit differences; 1 when every difference is 0, NaN when
    there are none."""
    d = np.asarray(differences, dtype=np.float64)
    if len(d) == 0:
        return math.nan
    if not np.any(d):
        return 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # scipy's note on falling back from the exact distribution
        return float(_scipy_stats().wilcoxon(d, alternative="two-sided").pvalue)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values; NaN (a test not evaluated) counts as p = 1 and stays NaN."""
    p = np.array([1.0 if math.isnan(v) else float(v) for v in pvalues])
    m = len(p)
    order = np.argsort(p, kind="stable")
    adjusted = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return [math.nan if math.isnan(v) else float(a) for v, a in zip(pvalues, adjusted)]


def per_query_values(per_query: dict, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """(query indices, values in percent) of one run's ``per_query`` record for ``metric`` (rank1 or mAP...)."""
    queries = np.asarray(per_query["query"], dtype=np.int64)
    if metric == "rank1":
        values = 100.0 * (np.asarray(per_query["first_match_rank"]) == 1)
    elif metric == "mAP":
        values = 100.0 * np.asarray(per_query["ap_official"], dtype=np.float64)
    elif metric == "mAP_noninterp":
        values = 100.0 * np.asarray(per_query["ap_noninterp"], dtype=np.float64)
    else:
        raise AEAError(f"no per-query values for metric {metric!r}; use rank1, mAP or mAP_noninterp")
    return queries, values


def paired_differences(a: dict, b: dict, metric: str) -> np.ndarray:
    """Per-query ``metric`` of run A minus run B on the same test set (queries matched by index)."""
    qa, va = per_query_values(a, metric)
    qb, vb = per_query_values(b, metric)
    if not np.array_equal(qa, qb):
        raise AEAError("the two runs were evaluated on different queries; compare runs of one test set")
    return va - vb
