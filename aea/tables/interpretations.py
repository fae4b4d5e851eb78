"""Every choice the paper leaves open that can flip a claim, run both ways on the same seeds.

For each choice (a config key with two readings) the table shows, per dataset and
metric, paired differences with their 95% t intervals over seeds (``aea.stats``) and,
when inconclusive, the seeds each would need:
  * the effect of the reading itself: method under reading B - method under A;
  * the claims it touches, under each reading: e.g. AEA - Baseline 1 with the
    joint triplet and with one triplet per network.
Reading A is the profile's value (the config default), reading B the other one;
the column ``paper_profile`` says which reading the ``paper`` profile uses.
The test-feature reading needs no extra training: every run of a concatenated
feature is evaluated both ways from one extraction (``alternatives`` in its
metrics.json).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from aea import stats as S
from aea.config import format_value, run_name
from aea.errors import AEAError
from aea.io import write_json, write_text
from aea.names import DATASET_LABELS, DATASETS
from aea.tables.aggregate import collect_provenance, load_metrics, write_csv
from aea.tables.claims import compare_runs, comparison_fields, interval_text, seeds_needed_text
from aea.tables.specs import METHOD_LABELS, RunSpec

NAME = "interpretations"
COLUMNS = ["choice", "key", "paper_profile", "comparison", "reading", "dataset", "metric", "n_seeds", "diff",
           "low", "high", "seed_sd", "status", "seeds_needed"]
METRICS = ("rank1", "mAP")


@dataclass(frozen=True)
class Choice:
    """An open choice: config ``key`` read as ``reading_b`` instead of the profile's value, for ``methods``;
    ``claims`` lists the (winner, loser) comparisons of the paper's claims it can flip."""

    name: str
    key: str
    reading_b: Any
    methods: tuple[str, ...]
    claims: tuple[tuple[str, str], ...]
    evaluated_in_run: bool = False  # the other reading is in every run's metrics.json (no extra training)


CHOICES: tuple[Choice, ...] = (
    Choice("triplet: one per network vs one over both networks", "triplet_mode", "joint", ("aea",),
           (("aea", "baseline1"),)),
    Choice("warm-up (basic network alone first) for methods whose erasing does not need it", "warmup_epochs", 0,
           ("baseline3", "baseline4", "reda", "aos"),
           (("baseline4", "baseline3"), ("aea", "reda"), ("aea", "aos"))),
    Choice("REDA as a second network vs one network trained with random erasing (p = 0.5)", "peer_form",
           "one_network", ("reda",), (("aea", "reda"),)),
    # the harness's control (two networks, no erasing) has the same 5,120-d feature: re-read at no training cost
    Choice("5,120-d test feature: halves L2-normalised then concatenated vs concatenated then L2", "test_feature_norm",
           "concat", ("aea", "noerase"), (("aea", "baseline1"), ("aea", "noerase")), evaluated_in_run=True),
)


def interpretation_runs(datasets: Sequence[str]) -> list[RunSpec]:
    """The runs the table needs: every method involved at the profile's reading, and reading B where it trains."""
    runs: list[RunSpec] = []
    for ds in datasets:
        for choice in CHOICES:
            involved = dict.fromkeys([*choice.methods, *(m for pair in choice.claims for m in pair)])
            runs += [RunSpec(ds, m, {}) for m in involved]
            if not choice.evaluated_in_run:
                runs += [RunSpec(ds, m, {choice.key: choice.reading_b}) for m in choice.methods]
    unique: dict[tuple, RunSpec] = {}
    for r in runs:
        unique.setdefault((r.dataset, r.method, tuple(sorted(r.overrides.items()))), r)
    return list(unique.values())


def _key(method: str, dataset: str, overrides: Mapping[str, Any]) -> tuple:
    return method, dataset, run_name(method, dict(overrides))


def _index(metrics: Sequence[Mapping[str, Any]]) -> dict[tuple, list[Mapping[str, Any]]]:
    cells: dict[tuple, list[Mapping[str, Any]]] = {}
    for m in metrics:
        cells.setdefault(_key(m["method"], m["dataset"], m.get("overrides") or {}), []).append(m)
    return cells


def _reading_b_runs(choice: Choice, method: str, dataset: str, cells: Mapping[tuple, list]) -> list[Mapping]:
    """``method``'s runs under reading B: its own runs, or its default runs re-read from ``alternatives``."""
    if method not in choice.methods:
        return cells.get(_key(method, dataset, {}), [])
    if not choice.evaluated_in_run:
        return cells.get(_key(method, dataset, {choice.key: choice.reading_b}), [])
    alternative = f"{choice.key}={choice.reading_b}"
    out = []
    for run in cells.get(_key(method, dataset, {}), []):
        if alternative in (run.get("alternatives") or {}):
            reread = copy.copy(run)
            reread["per_query"] = run["alternatives"][alternative]["per_query"]
            out.append(reread)
    return out


def _row(choice: Choice, paper_value: Any, comparison: str, reading: str, dataset: str, metric: str,
         got: list[S.Interval] | str) -> dict[str, Any]:
    row = {"choice": choice.name, "key": choice.key, "paper_profile": f"{choice.key}={format_value(paper_value)}",
           "comparison": comparison, "reading": reading, "dataset": dataset, "metric": metric}
    fields = comparison_fields(got)
    fields.pop("n_queries", None)
    return {**row, **fields}


def build_interpretations(metrics: Sequence[Mapping[str, Any]], paper_values: Mapping[str, Any]) -> pd.DataFrame:
    """The table from the runs' metrics.json dicts; ``paper_values[key]`` = the paper profile's reading."""
    if not metrics:
        raise AEAError("no runs given for the interpretations table; run its workflow target first")
    cells = _index(metrics)
    datasets = [d for d in DATASETS if any(k[1] == d for k in cells)]
    plain = next((m for m in metrics if not m.get("overrides")), None)
    if plain is None:
        raise AEAError("the interpretations table needs the profile's default runs; run its workflow target")
    profile_value = {c.key: plain["config"][c.key] for c in CHOICES}
    rows = []
    for choice, ds, metric in ((c, d, m) for c in CHOICES for d in datasets for m in METRICS):
        a_text = f"{choice.key}={format_value(profile_value[choice.key])}"
        b_text = f"{choice.key}={format_value(choice.reading_b)}"
        for method in choice.methods:
            got = compare_runs(_reading_b_runs(choice, method, ds, cells), cells.get(_key(method, ds, {}), []),
                               metric)
            rows.append(_row(choice, paper_values[choice.key], f"{METHOD_LABELS[method]}: B - A",
                             f"{b_text} - {a_text}", ds, metric, got))
        for winner, loser in choice.claims:
            text = f"{METHOD_LABELS[winner]} - {METHOD_LABELS[loser]}"
            a = compare_runs(cells.get(_key(winner, ds, {}), []), cells.get(_key(loser, ds, {}), []), metric)
            b = compare_runs(_reading_b_runs(choice, winner, ds, cells), _reading_b_runs(choice, loser, ds, cells),
                             metric)
            rows.append(_row(choice, paper_values[choice.key], text, f"A: {a_text}", ds, metric, a))
            rows.append(_row(choice, paper_values[choice.key], text, f"B: {b_text}", ds, metric, b))
    return pd.DataFrame(rows, columns=COLUMNS)


def interpretations_markdown(table: pd.DataFrame, profile: str) -> str:
    """The readable report: per choice, what each reading does and how the claims it touches come out."""
    lines = [f"# Open choices of the paper, run both ways (profile `{profile}`)", "",
             "Each row: paired difference in points (mean over seeds) with its 95% t interval over the per-seed "
             "differences and `holds` (above 0) / `fails` (below 0) / `inconclusive` (with the seeds it would "
             "need for 80% power at the observed difference). "
             "Reading A is the profile's value, B the other reading; `paper profile` is what the `paper` "
             "profile uses.", ""]
    for choice, rows in table.groupby("choice", sort=False):
        lines += [f"## {choice}", "", f"paper profile: `{rows.paper_profile.iloc[0]}`", "",
                  "| comparison | reading | dataset | metric | difference [95% CI] (seeds) | status | seeds needed |",
                  "| --- | --- | --- | --- | --- | --- | --- |"]
        for r in rows.to_dict("records"):
            lines.append(f"| {r['comparison']} | {r['reading']} | {DATASET_LABELS.get(r['dataset'], r['dataset'])} "
                         f"| {r['metric']} | {interval_text(r)} | {r['status']} | {seeds_needed_text(r)} |")
        lines.append("")
    return "\n".join(lines)


def interpretation_files(out_dir: str | Path) -> list[Path]:
    out_dir = Path(out_dir)
    return [out_dir / f"{NAME}.csv", out_dir / f"{NAME}.provenance.json", out_dir / f"{NAME}.diff.md"]


def make_interpretations(metrics_paths: Sequence[str | Path], out_dir: str | Path,
                         paper_values: Mapping[str, Any]) -> pd.DataFrame:
    """``interpretations.csv`` + provenance + ``.diff.md`` in ``out_dir``."""
    metrics = load_metrics(metrics_paths)
    table = build_interpretations(metrics, paper_values)
    csv_path, provenance, md = interpretation_files(out_dir)
    write_csv(table, csv_path)
    write_json(provenance, collect_provenance(NAME, metrics, list(metrics_paths)))
    write_text(md, interpretations_markdown(table, str(metrics[0]["profile"])))
    return table
