"""Paired comparisons of two methods over seeds and test queries, with a seeded bootstrap interval.

A comparison "A beats B" on one dataset and metric is a set of paired
differences: for every seed both methods were trained with, and every valid test
query, ``d = metric_A(query) - metric_B(query)`` (AP for mAP, a 0/100 hit for
rank-1), so the mean of ``d`` over queries is exactly the difference of the two
runs' table values at that seed.  The estimate is the mean over seeds of those
per-seed differences.

Its 95% interval comes from a two-stage (hierarchical) percentile bootstrap:
each draw resamples the seeds with replacement and, inside every drawn seed,
the queries with replacement (one draw of queries serves both methods, since
the difference vector is resampled).  Training randomness (seeds) and test-set
sampling (queries) both widen it.  With few seeds the seed stage is coarse and
percentile intervals run narrow, so a verdict needs at least ``MIN_SEEDS``
seeds and the number of seeds is always reported beside the interval.

Verdict of one comparison, in the claim's direction: ``holds`` when the whole
interval lies above 0, ``fails`` when it lies wholly below 0, ``inconclusive``
when it contains 0 (identical runs give the zero-width interval [0, 0]).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from aea.errors import AEAError

HOLDS, FAILS, INCONCLUSIVE = "holds", "fails", "inconclusive"
MIN_SEEDS = 2  # with one seed the interval would show test-set noise only, none of the training's
DRAWS = 2000
LEVEL = 0.95
BOOTSTRAP_SEED = 20200323  # fixed: the same inputs always give the same interval
_CHUNK_CELLS = 2_000_000  # query indices drawn at once (bounds memory at paper-size query sets)


@dataclass(frozen=True)
class Interval:
    """Paired difference (mean over seeds of the mean over queries) with its bootstrap interval."""

    diff: float
    low: float
    high: float
    n_seeds: int
    n_queries: int

    @property
    def status(self) -> str:
        if self.n_seeds < MIN_SEEDS:
            return INCONCLUSIVE
        if self.low > 0:
            return HOLDS
        if self.high < 0:
            return FAILS
        return INCONCLUSIVE

    def text(self, digits: int = 1) -> str:
        return f"{self.diff:+.{digits}f} [{self.low:+.{digits}f}, {self.high:+.{digits}f}] (n={self.n_seeds})"


def _resampled_means(diffs: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` means of ``diffs`` resampled with replacement (chunked to bound memory)."""
    n = len(diffs)
    out = np.empty(count)
    chunk = max(1, _CHUNK_CELLS // n)
    for start in range(0, count, chunk):
        stop = min(count, start + chunk)
        out[start:stop] = diffs[rng.integers(0, n, size=(stop - start, n))].mean(axis=1)
    return out


def paired_interval(per_seed: Sequence[np.ndarray], *, draws: int = DRAWS, level: float = LEVEL,
                    seed: int = BOOTSTRAP_SEED) -> Interval:
    """Interval of the mean over seeds of the mean over queries of the paired differences ``per_seed``.

    ``per_seed[s]`` holds seed s's per-query differences (A - B), one entry per valid query.
    """
    return paired_intervals(per_seed, (level,), draws=draws, seed=seed)[0]


def paired_intervals(per_seed: Sequence[np.ndarray], levels: Sequence[float], *, draws: int = DRAWS,
                     seed: int = BOOTSTRAP_SEED) -> list[Interval]:
    """``paired_interval`` at several confidence levels from one bootstrap (e.g. 95% and family-adjusted)."""
    if not per_seed:
        raise AEAError("a paired comparison needs at least one seed with both runs")
    if not all(0.0 < level < 1.0 for level in levels):
        raise AEAError(f"confidence levels {list(levels)} must be in (0, 1)")
    arrays = [np.asarray(d, dtype=np.float64) for d in per_seed]
    if any(len(a) == 0 for a in arrays) or any(not np.isfinite(a).all() for a in arrays):
        raise AEAError("paired differences must be non-empty and finite; re-run the evaluation of those runs")
    rng = np.random.default_rng(seed)
    n_seeds = len(arrays)
    picked = rng.integers(0, n_seeds, size=(draws, n_seeds))  # stage 1: seeds with replacement
    slot_means = np.empty((draws, n_seeds))
    for s, a in enumerate(arrays):  # stage 2: each drawn seed's queries, independently per slot
        where = picked == s
        slot_means[where] = _resampled_means(a, int(where.sum()), rng)
    stats = slot_means.mean(axis=1)
    diff = float(np.mean([a.mean() for a in arrays]))
    out = []
    for level in levels:
        tail = (1.0 - level) / 2.0
        low, high = np.quantile(stats, [tail, 1.0 - tail])
        out.append(Interval(diff, float(low), float(high), n_seeds, len(arrays[0])))
    return out


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
