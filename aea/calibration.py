"""The verdicts' error rates, measured: simulations under a known truth through ``aea.stats``'s own functions.

A simulated comparison has ``n_seeds`` seeds of ``n_queries`` per-query paired differences (percentage points):

    d[s, j] = truth + T[s] + Q[j] + E[s, j]

``T[s]`` ~ N(0, train_sd^2) is seed s's training effect; ``Q[j]`` is query j's own effect, shared by every seed
(the same test set: correlation ``shared`` between two seeds' differences on one query), centred over the
test set, so the truth on this test set is ``truth`` (what the interval claims to cover, see ``aea.stats``);
``E[s, j]`` is the rest of the per-query noise, N(0, (1 - shared) query_sd^2).  Each simulated comparison goes
through the procedure (``aea.stats.paired_intervals`` by default) at 95% and at a Bonferroni family level, and
the rates of each verdict are counted.  Under truth 0 every "holds" or "fails" is a false decision: its rate
should be 5% at 95%, and ``FAMILY_K``-fold smaller at the family level.

``python -m aea.calibration --out docs/calibration/t-interval.csv`` writes the table that docs/statistics.md
shows; ``tests/test_calibration.py`` asserts its bounds in CI.  ``--procedure FILE`` measures another
procedure: a Python file defining ``paired_intervals(per_seed, levels)``, e.g. the bootstrap this project used
before (``git show a05a7e7:aea/stats.py > /tmp/bootstrap.py``).
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from aea import stats as S

FAMILY_K = 32  # "AEA beats Baselines 1-4": 4 baselines x 4 datasets x 2 metrics
SIMS = 2000
SEED = 20261207
BOUND_MASS = 0.999  # a false-decision count outside the central 99.9% binomial interval of its nominal rate fails
_CHUNK_VALUES = 4_000_000  # simulated differences held at once

Procedure = Callable[[Sequence[np.ndarray], Sequence[float]], list]


@dataclass(frozen=True)
class Scenario:
    n_seeds: int
    train_sd: float
    n_queries: int
    truth: float = 0.0
    query_sd: float = 20.0
    shared: float = 0.1


NULL_GRID = tuple(Scenario(n, sd, q) for n, sd, q in itertools.product((2, 3, 5, 10), (0.0, 1.0, 4.0), (300, 3000)))
POWER_CASE = Scenario(10, 1.0, 300, truth=3.0)  # must decide (holds) at least 80% of the time
MIN_POWER = 0.80


def simulated_comparisons(scenario: Scenario, sims: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """``sims`` arrays of shape (n_seeds, n_queries), each one simulated comparison (see the module docstring)."""
    per_sim = scenario.n_seeds * scenario.n_queries
    chunk = max(1, _CHUNK_VALUES // per_sim)
    shared_sd = scenario.query_sd * math.sqrt(scenario.shared)
    own_sd = scenario.query_sd * math.sqrt(1.0 - scenario.shared)
    for start in range(0, sims, chunk):
        m = min(chunk, sims - start)
        query = rng.normal(0.0, shared_sd, (m, 1, scenario.n_queries))
        query -= query.mean(axis=2, keepdims=True)  # the truth is the difference on this test set
        train = rng.normal(0.0, scenario.train_sd, (m, scenario.n_seeds, 1))
        d = scenario.truth + train + query + rng.normal(0.0, own_sd, (m, scenario.n_seeds, scenario.n_queries))
        yield from d


def verdict_rates(scenario: Scenario, sims: int = SIMS, seed: int = SEED,
                  procedure: Procedure = S.paired_intervals) -> dict[str, float]:
    """Counts and rates of each verdict at 95% and at the family level of ``FAMILY_K`` comparisons."""
    rng = np.random.default_rng([seed, scenario.n_seeds, int(scenario.train_sd * 100), scenario.n_queries,
                                 int(scenario.truth * 100)])
    counts = dict.fromkeys(("holds", "fails", "family_holds", "family_fails"), 0)
    levels = (S.LEVEL, S.family_level(FAMILY_K))
    for d in simulated_comparisons(scenario, sims, rng):
        single, family = procedure(list(d), levels)
        counts["holds"] += single.status == S.HOLDS
        counts["fails"] += single.status == S.FAILS
        counts["family_holds"] += family.status == S.HOLDS
        counts["family_fails"] += family.status == S.FAILS
    decided = counts["holds"] + counts["fails"]
    family_decided = counts["family_holds"] + counts["family_fails"]
    return {**asdict(scenario), "sims": sims, **counts, "decided": decided, "decision_rate": decided / sims,
            "family_decided": family_decided, "family_decision_rate": family_decided / sims}


def false_decision_bounds(sims: int, nominal: float, mass: float = BOUND_MASS) -> tuple[int, int]:
    """The central ``mass`` binomial interval of false-decision counts in ``sims`` comparisons at rate ``nominal``."""
    from scipy.stats import binom

    tail = (1.0 - mass) / 2.0
    return int(binom.ppf(tail, sims, nominal)), int(binom.ppf(1.0 - tail, sims, nominal))


def calibration_table(sims: int = SIMS, seed: int = SEED, procedure: Procedure = S.paired_intervals,
                      scenarios: Sequence[Scenario] = (*NULL_GRID, POWER_CASE)) -> pd.DataFrame:
    """One row per scenario: verdict counts and rates, and whether each lies within its bound (null scenarios:
    the binomial bounds of 5% and of 5%/``FAMILY_K``; the power case: decided at least ``MIN_POWER``)."""
    low, high = false_decision_bounds(sims, 1.0 - S.LEVEL)
    _, family_high = false_decision_bounds(sims, (1.0 - S.LEVEL) / FAMILY_K)
    rows = []
    for scenario in scenarios:
        row = verdict_rates(scenario, sims, seed, procedure)
        if scenario.truth == 0.0:
            row["within_bound"] = bool(low <= row["decided"] <= high and row["family_decided"] <= family_high)
            row["bound"] = f"{low}..{high} of {sims} at 95%; <= {family_high} at 1 - 0.05/{FAMILY_K}"
        else:
            row["within_bound"] = bool(row["holds"] >= MIN_POWER * sims)
            row["bound"] = f">= {MIN_POWER:.0%} holds"
        rows.append(row)
    return pd.DataFrame(rows)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Measure the false decision rate of aea's verdict procedure.")
    parser.add_argument("--out", type=Path, required=True, help="CSV to write")
    parser.add_argument("--sims", type=int, default=SIMS)
    parser.add_argument("--procedure", type=Path, help="a Python file defining paired_intervals(per_seed, levels) "
                                                       "to measure instead of aea.stats's")
    args = parser.parse_args(argv)
    from aea.tables.aggregate import write_csv

    procedure = S.paired_intervals
    if args.procedure:
        import importlib.util

        spec = importlib.util.spec_from_file_location("procedure_under_test", args.procedure)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # its dataclasses look their module up there
        spec.loader.exec_module(module)
        procedure = module.paired_intervals
    table = calibration_table(args.sims, procedure=procedure)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_csv(table, args.out)
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
