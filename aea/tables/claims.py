"""The paper's worded claims (and the harness's, about its controls), decided by paired comparisons over seeds
with calibrated t intervals.

A claim is a set of comparisons "cell A above cell B" (same dataset and metric;
e.g. AEA vs Baseline 1 on Market-1501 in mAP, or R = 10 vs R = 20).  Each is
the paired difference of the two cells' runs over the seeds both have, with a
95% t interval on the per-seed differences (``aea.stats``, its error rate
proven by ``aea.calibration`` in CI), and its own status: holds / fails /
inconclusive; an inconclusive one also carries the seeds it would need.

The claim's verdict:
  holds          every comparison holds (an intersection-union test: no
                 multiplicity correction is needed for "all of them");
  fails          at least one comparison fails at the family level (its
                 interval at 1 - 0.05/k, Bonferroni over the claim's k
                 comparisons, lies wholly on the wrong side);
  inconclusive   otherwise; its detail names the most seeds any of its
                 inconclusive comparisons needs;
  not evaluable  a needed run is missing or carries no per-query results.
"X is best" claims compare the best setting with every other setting that was
run (profiles sweep fewer values than the paper); settings of the paper's grid
that were not run are named in the detail.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from aea import stats as S
from aea.names import DATASETS
from aea.tables.aggregate import Cell
from aea.tables.specs import CUHK03, DEFAULT_SETTING, METHOD_LABELS, setting_key, table_runs

CLAIM_COLUMNS = ["table", "claim", "claimed_by", "verdict", "detail", "winner", "loser", "dataset", "metric", "n_seeds",
                 "n_queries", "diff", "low", "high", "seed_sd", "status", "seeds_needed"]


@dataclass(frozen=True)
class Comparison:
    """``winner`` is claimed above ``loser`` (cells of one dataset) in ``metric``."""

    winner: Cell
    loser: Cell
    metric: str

    def label(self, cell: Cell) -> str:
        method = METHOD_LABELS.get(cell[0], cell[0])
        return method if cell[2] == DEFAULT_SETTING else f"{method} ({cell[2]})"


PAPER = "paper"
HARNESS = "harness"  # a claim the paper does not make: it tests a control the paper lacks (TableSpec.controls)


@dataclass(frozen=True)
class Claim:
    """A statement made in words, by the paper or (``claimed_by`` HARNESS) by the harness about its controls;
    ``comparisons(cells present)`` -> (comparisons, note)."""

    table: str
    text: str
    comparisons: Callable[[set[Cell]], tuple[list[Comparison], str]]
    claimed_by: str = PAPER


def _beats(winner: str, losers: Sequence[str], datasets: Sequence[str], metrics: Sequence[str]):
    """``winner`` above every loser on every dataset and metric (default settings)."""
    def comparisons(_cells: set[Cell]) -> tuple[list[Comparison], str]:
        return [Comparison((winner, ds, DEFAULT_SETTING), (loser, ds, DEFAULT_SETTING), metric)
                for ds, loser, metric in itertools.product(datasets, losers, metrics)], ""
    return comparisons


def _best(name: str, best: Mapping[str, Any], datasets: Sequence[str], metrics: Sequence[str]):
    """AEA with setting ``best`` above every other setting of the sweep that was run."""
    best_key = setting_key(best)

    def comparisons(cells: set[Cell]) -> tuple[list[Comparison], str]:
        out, not_run = [], []
        for ds in datasets:
            grid = [setting_key(r.overrides) for r in table_runs(name, [ds])]
            present = [s for s in grid if ("aea", ds, s) in cells]
            not_run += [f"{ds} {s}" for s in grid if s not in present]
            others = [s for s in present if s != best_key] or [None]
            for other, metric in itertools.product(others, metrics):
                loser = ("aea", ds, other) if other else ("aea", ds, "another setting")
                out.append(Comparison(("aea", ds, best_key), loser, metric))
        note = f"paper grid not fully run; missing: {', '.join(not_run)}" if not_run else ""
        return out, note
    return comparisons


_RM = ("rank1", "mAP")
_BASELINES = ("baseline1", "baseline2", "baseline3", "baseline4")
# The harness's claim about its control (issue 23): if AEA's gain over Baseline 1 comes from the erasing, AEA beats
# the same two networks trained without erasing; if it comes from the second network, it does not.
_BEATS_ENSEMBLE = "AEA beats two networks without erasing on every dataset, in rank-1 and in mAP"
CLAIMS: dict[str, list[Claim]] = {
    "table2": [
        Claim("table2", "AEA beats Baselines 1-4 on every dataset, in rank-1 and in mAP",
              _beats("aea", _BASELINES, DATASETS, _RM)),
        Claim("table2", "Baseline 1 beats Baseline 2 on every dataset, in rank-1 and in mAP",
              _beats("baseline1", ("baseline2",), DATASETS, _RM)),
        Claim("table2", "Baseline 4 beats Baseline 3 on every dataset, in rank-1 and in mAP",
              _beats("baseline4", ("baseline3",), DATASETS, _RM)),
        Claim("table2", _BEATS_ENSEMBLE, _beats("aea", ("noerase",), DATASETS, _RM), HARNESS),
    ],
    "table6": [
        Claim("table6", "AEA beats REDA and AOS on every dataset, in rank-1 and in mAP",
              _beats("aea", ("reda", "aos"), DATASETS, _RM)),
        Claim("table6", _BEATS_ENSEMBLE, _beats("aea", ("noerase",), DATASETS, _RM), HARNESS),
    ],
    "table7": [
        Claim("table7", "alpha1 = alpha2 = 1 gives the best rank-1 over {0.1, 0.5, 1, 1.5, 2}^2 on Market-1501",
              _best("table7", {"alpha1": 1.0, "alpha2": 1.0}, ("market1501",), ("rank1",))),
    ],
    "table8": [
        Claim("table8", "alpha1 = alpha2 = 1 gives the best mAP over {0.1, 0.5, 1, 1.5, 2}^2 on Market-1501",
              _best("table8", {"alpha1": 1.0, "alpha2": 1.0}, ("market1501",), ("mAP",))),
    ],
    "table9": [
        Claim("table9", "attention from Conv2_X beats Conv1, Conv3_X, Conv4_X, Conv5_X on Market-1501 "
                        "(rank-1 and mAP)",
              _best("table9", {"erase_layer": "conv2"}, ("market1501",), _RM)),
    ],
    "fig6": [
        Claim("fig6", "R = 10 is best on Market-1501 and DukeMTMC-reID (rank-1 and mAP)",
              _best("fig6", {"erase_ratio": 10.0}, ("market1501", "dukemtmcreid"), _RM)),
        Claim("fig6", "R = 20 is best on CUHK03 labeled and detected (rank-1 and mAP)",
              _best("fig6", {"erase_ratio": 20.0}, CUHK03, _RM)),
    ],
    "fig7": [
        Claim("fig7", "m = 0.3 is best on Market-1501 and DukeMTMC-reID (rank-1 and mAP)",
              _best("fig7", {"margin": 0.3}, ("market1501", "dukemtmcreid"), _RM)),
        Claim("fig7", "m = 0.35 is best on CUHK03 labeled and detected (rank-1 and mAP)",
              _best("fig7", {"margin": 0.35}, CUHK03, _RM)),
    ],
}


def compare_runs(winner_runs: Iterable[Mapping[str, Any]], loser_runs: Iterable[Mapping[str, Any]], metric: str,
                 levels: Sequence[float] = (S.LEVEL,)) -> list[S.Interval] | str:
    """Intervals of winner - loser over the seeds both cells ran; a reason string when there is nothing to pair."""
    by_seed_w = {int(r["seed"]): r for r in winner_runs}
    by_seed_l = {int(r["seed"]): r for r in loser_runs}
    seeds = sorted(set(by_seed_w) & set(by_seed_l))
    if not seeds:
        return "missing runs" if not by_seed_w or not by_seed_l else "no seed run by both"
    lacking = [f"seed {s}" for s in seeds for r in (by_seed_w[s], by_seed_l[s]) if "per_query" not in r]
    if lacking:
        return "runs lack per-query results (re-run `aea evaluate` on them)"
    diffs = [S.paired_differences(by_seed_w[s]["per_query"], by_seed_l[s]["per_query"], metric) for s in seeds]
    return S.paired_intervals(diffs, levels)


def evaluate_claims(cells: Mapping[Cell, Sequence[Mapping[str, Any]]], claims: Sequence[Claim]) -> pd.DataFrame:
    """One row per comparison of every claim (claim verdict and detail repeated), as described above."""
    rows = []
    for claim in claims:
        comparisons, note = claim.comparisons(set(cells))
        family = S.family_level(len(comparisons))
        results = []
        for c in comparisons:
            got = compare_runs(cells.get(c.winner, ()), cells.get(c.loser, ()), c.metric, (S.LEVEL, family))
            results.append((c, got))
        verdict, detail = _verdict(results, note)
        for c, got in results:
            row = {"table": claim.table, "claim": claim.text, "claimed_by": claim.claimed_by, "verdict": verdict,
                   "detail": detail, "winner": c.label(c.winner), "loser": c.label(c.loser), "dataset": c.winner[1],
                   "metric": c.metric}
            rows.append({**row, **comparison_fields(got)})
    return pd.DataFrame(rows, columns=CLAIM_COLUMNS)


def comparison_fields(got: list[S.Interval] | str) -> dict[str, Any]:
    """A comparison's columns from ``compare_runs``: its 95% interval, seed SD, status and, when inconclusive,
    the seeds it would need (empty when no number of seeds would: a difference of exactly 0 or one seed)."""
    if isinstance(got, str):
        return {"status": f"{S.NOT_EVALUABLE} ({got})"}
    iv = got[0]
    needed = iv.seeds_needed if iv.status == S.INCONCLUSIVE else None
    return {"n_seeds": iv.n_seeds, "n_queries": iv.n_queries, "diff": iv.diff, "low": iv.low, "high": iv.high,
            "seed_sd": iv.sd, "status": iv.status, "seeds_needed": needed}


def status_changes(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """The comparisons of two claims tables (``<table>.claims.csv`` of the same runs on two machines, or two
    thread counts) side by side: ``status_a``, ``status_b`` and ``change``: ``same``, ``decided <-> inconclusive``
    (within the error rate a 95% interval allows), or ``holds <-> fails`` (a defect: the two intervals exclude
    each other's side)."""
    key = ["table", "claim", "winner", "loser", "dataset", "metric"]
    both = a[key + ["diff", "status"]].merge(b[key + ["diff", "status"]], on=key, how="outer",
                                              suffixes=("_a", "_b"), validate="one_to_one")

    def change(row: pd.Series) -> str:
        pair = {row.status_a, row.status_b}
        if len(pair) == 1:
            return "same"
        return "holds <-> fails" if pair == {S.HOLDS, S.FAILS} else "decided <-> inconclusive"

    return both.assign(change=both.apply(change, axis=1) if len(both) else [])


def interval_text(row: Mapping[str, Any]) -> str:
    """A comparison row's "diff [low, high] (seeds)" in points; empty when not evaluable."""
    if pd.isna(row.get("diff")):
        return ""
    if pd.isna(row.get("low")):
        return f"{row['diff']:+.1f} [no interval] ({int(row['n_seeds'])})"
    return f"{row['diff']:+.1f} [{row['low']:+.1f}, {row['high']:+.1f}] ({int(row['n_seeds'])})"


def seeds_needed_text(row: Mapping[str, Any]) -> str:
    """A comparison row's seeds needed: the number, "> MAX_SEEDS" for an inconclusive one with none, else empty."""
    if row.get("status") != S.INCONCLUSIVE or pd.isna(row.get("seed_sd")):
        return ""
    needed = row.get("seeds_needed")
    return f"> {S.MAX_SEEDS}" if needed is None or pd.isna(needed) else str(int(needed))


def _verdict(results: list[tuple[Comparison, list[S.Interval] | str]], note: str) -> tuple[str, str]:
    evaluable = [got for _, got in results if not isinstance(got, str)]
    missing = len(results) - len(evaluable)
    holds = sum(got[0].status == S.HOLDS for got in evaluable)
    fails = sum(got[0].status == S.FAILS for got in evaluable)
    family_fails = sum(got[1].status == S.FAILS for got in evaluable)
    inconclusive = [got[0] for got in evaluable if got[0].status == S.INCONCLUSIVE]
    seeds = sorted({got[0].n_seeds for got in evaluable})
    parts = [f"{len(results)} comparisons: {holds} hold, {fails} fail at 95% ({family_fails} after Bonferroni), "
             f"{len(inconclusive)} inconclusive" + (f", {missing} not evaluable" if missing else "")]
    if seeds:
        parts.append(f"seeds per comparison: {'/'.join(map(str, seeds))}")
        if seeds[0] < S.MIN_SEEDS:
            parts.append(f"fewer than {S.MIN_SEEDS} seeds never decide")
        elif len(results) > 1:
            k, n = len(results), seeds[0]
            parts.append(f"a family-level fails needs |t| > {S.t_quantile(n - 1, S.family_level(k)):.1f} "
                         f"({n} seeds, {k} comparisons)")
    if inconclusive and seeds and seeds[0] >= S.MIN_SEEDS:
        needed = [iv.seeds_needed for iv in inconclusive]
        known = [n for n in needed if n is not None]
        text = f"seeds to decide its inconclusive comparisons (80% power at the observed difference): up to " \
               f"{max(known)}" if known else "no number of seeds would decide its inconclusive comparisons"
        if known and len(known) < len(needed):
            text += f" ({len(needed) - len(known)} more than {S.MAX_SEEDS} or never: difference about 0)"
        parts.append(text)
    if note:
        parts.append(note)
    detail = "; ".join(parts)
    if family_fails:
        return S.FAILS, detail
    if missing or not results:
        return S.NOT_EVALUABLE, detail
    if holds == len(results):
        return S.HOLDS, detail
    return S.INCONCLUSIVE, detail
