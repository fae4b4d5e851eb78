"""The mechanism experiment's table (docs/mechanism.md): each pre-registered prediction and control decided.

Input: metrics.json files of runs on generator-version-2 data (``aea evaluate`` writes their ``mechanism``
record: the data set's variant, test-time occlusion p and generator seed). A run is identified by
(variant, p, method) and its unit, the pair (generator seed, training seed).

Every test is a paired difference per unit and per query, ``sum(sign * value(method, p))`` over its terms
(AEA - B1 at one p; (AEA - B1 at 0.2) - (AEA - B1 at 0) for P2, the same query draws for both gains), over
the units that have all its runs:
  - 95% interval: ``aea.stats.paired_interval`` (units, then queries, resampled; the claims' bootstrap);
  - Wilcoxon signed-rank test (two-sided; scipy picks the exact distribution for 10 units without ties or
    zeros) on the per-unit mean differences;
  - Holm's correction over the family P1a, P1b, P2a, P2b, P3, P4, P5, K1 (a test that cannot be evaluated
    counts as p = 1, which leaves the others' adjustment as conservative as with all 8 present).
Verdicts:
  prediction   ``holds`` when the interval lies wholly on the predicted side and the Holm-adjusted p < 0.05,
               ``fails`` when it lies wholly on the other side, ``inconclusive`` otherwise;
  K1           ``holds`` unless the interval of AEA - B1 (single-cue, p = 0) lies wholly above 0 (then ``fails``);
  K2           ``holds`` when (B2 - chance) < 0.25 (B1 - chance) in mean official mAP over the units (chance:
               the runs' mean mAP of 10 seeded random rankings of the test set), else ``fails``;
  K3           ``holds`` when the interval of AEA - B1 (redundant, p = 0) lies within [-3, +3] mAP points,
               ``fails`` when it lies wholly outside, ``inconclusive`` otherwise (the design states only when
               it holds; "wholly outside" is this module's reading of the opposite);
  secondary    (P4/P5 at p = 0 and 0.2, every test in rank-1) the interval's side alone, raw Wilcoxon p; they
               decide nothing.
Fewer than ``aea.stats.MIN_SEEDS`` units never decide (``inconclusive``); a test without any unit is
``not evaluable``. Pure functions; matplotlib is imported only by ``plot_gains``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aea import stats as S
from aea.errors import AEAError
from aea.io import atomic_path, write_json, write_text
from aea.mechanism import LABELS, SALIENT_REGION
from aea.tables.aggregate import collect_provenance, load_metrics, write_csv

NAME = "mechanism"
ALPHA = 0.05
K2_FRACTION = 0.25
K3_BOUND = 3.0  # mAP points
PRIMARY_METRIC, SECONDARY_METRIC = "mAP", "rank1"
HOLM_FAMILY = ("P1a", "P1b", "P2a", "P2b", "P3", "P4", "P5", "K1")
COLUMNS = ["id", "role", "statement", "variant", "p", "comparison", "metric", "predicted", "n_units", "n_queries",
           "diff", "low", "high", "wilcoxon_p", "holm_p", "verdict", "detail"]
GAIN_REFERENCES = {"baseline1": "Baseline 1", "noerase": "two networks, no erasing",
                   "randbudget": "two networks, random erasing"}

RunKey = tuple[str, float, str]  # (variant, p, method)
Unit = tuple[int, int]  # (generator seed, training seed)
Term = tuple[int, str, float]  # (sign, method, p)


@dataclass(frozen=True)
class Test:
    """One pre-registered comparison: the per-query sum of ``sign * value`` over ``terms`` on ``variant``."""

    id: str
    role: str  # "prediction", "control" or "secondary"
    statement: str
    variant: str
    terms: tuple[Term, ...]
    side: int  # +1: predicted above 0, -1: below 0, 0: a control with its own rule
    metric: str = PRIMARY_METRIC

    @property
    def comparison(self) -> str:
        return " ".join(f"{'+' if sign > 0 else '-'} {method}@p={p:g}" for sign, method, p in self.terms).lstrip("+ ")

    @property
    def p(self) -> float:
        return max(p for _, _, p in self.terms)


def _vs(winner: str, loser: str, p: float) -> tuple[Term, ...]:
    return ((1, winner, p), (-1, loser, p))


def _gain_change(low: float, high: float) -> tuple[Term, ...]:
    return (*_vs("aea", "baseline1", high), *((-s, m, p) for s, m, p in _vs("aea", "baseline1", low)))


PRIMARY = (
    Test("P1a", "prediction", "AEA beats Baseline 1 at p = 0.2", "redundant", _vs("aea", "baseline1", 0.2), +1),
    Test("P1b", "prediction", "AEA beats Baseline 1 at p = 0.4", "redundant", _vs("aea", "baseline1", 0.4), +1),
    Test("P2a", "prediction", "the gain over Baseline 1 grows from p = 0 to 0.2", "redundant",
         _gain_change(0.0, 0.2), +1),
    Test("P2b", "prediction", "the gain over Baseline 1 grows from p = 0.2 to 0.4", "redundant",
         _gain_change(0.2, 0.4), +1),
    Test("P3", "prediction", "Baseline 2 is below Baseline 1 (p = 0)", "redundant",
         _vs("baseline2", "baseline1", 0.0), -1),
    Test("P4", "prediction", "AEA beats two networks without erasing (p = 0.4)", "redundant",
         _vs("aea", "noerase", 0.4), +1),
    Test("P5", "prediction", "AEA beats two networks with random erasing of the same budget (p = 0.4)", "redundant",
         _vs("aea", "randbudget", 0.4), +1),
    Test("K1", "control", "single-cue, p = 0: AEA does not beat Baseline 1", "single-cue",
         _vs("aea", "baseline1", 0.0), 0),
    Test("K2", "control", "single-cue, p = 0: Baseline 2 near chance", "single-cue",
         _vs("baseline2", "baseline1", 0.0), 0),
    Test("K3", "control", "redundant, p = 0: AEA roughly equals Baseline 1 (within 3 mAP points)", "redundant",
         _vs("aea", "baseline1", 0.0), 0),
)


def _secondary() -> tuple[Test, ...]:
    out = [Test(f"{t.id}@p={p:g}", "secondary", t.statement.replace("p = 0.4", f"p = {p:g}"), t.variant,
                _vs("aea", t.terms[1][1], p), +1)
           for t in PRIMARY if t.id in ("P4", "P5") for p in (0.0, 0.2)]
    out += [Test(f"{t.id}:rank1", "secondary", f"{t.statement} (rank-1)", t.variant, t.terms, t.side or +1,
                 SECONDARY_METRIC) for t in PRIMARY if t.id != "K2"]
    return tuple(out)


TESTS = PRIMARY + _secondary()


def index_runs(metrics: Sequence[Mapping[str, Any]]) -> dict[RunKey, dict[Unit, Mapping[str, Any]]]:
    """Runs by (variant, p, method), then by unit; refuses runs not on mechanism data and duplicates."""
    runs: dict[RunKey, dict[Unit, Mapping[str, Any]]] = {}
    for m in metrics:
        data = (m.get("mechanism") or {}).get("data")
        if not data:
            raise AEAError(f"run {m.get('run_name', '?')} (seed {m.get('seed', '?')}) was not evaluated on "
                           "mechanism data (no mechanism.data in its metrics); evaluate it with aea evaluate "
                           "--data-root on a data set of aea data make-mechanism")
        key = (str(data["variant"]), float(data["occlusion"]), str(m["method"]))
        unit = (int(data["seed"]), int(m["seed"]))
        if unit in runs.setdefault(key, {}):
            raise AEAError(f"two runs of {key[2]} on {key[0]} p={key[1]:g} for generator seed {unit[0]} and "
                           f"training seed {unit[1]}; give each run's metrics once")
        runs[key][unit] = m
    return runs


def unit_differences(test: Test, runs: Mapping[RunKey, Mapping[Unit, Mapping[str, Any]]]
                     ) -> dict[Unit, np.ndarray]:
    """Per unit (having every run of the test), the per-query differences of ``test`` in percent."""
    per_term = [runs.get((test.variant, p, method), {}) for _, method, p in test.terms]
    units = sorted(set.intersection(*(set(r) for r in per_term)))
    out = {}
    for unit in units:
        queries = None
        total = None
        for (sign, _, _), term_runs in zip(test.terms, per_term):
            per_query = term_runs[unit].get("per_query")
            if per_query is None:
                raise AEAError(f"run {term_runs[unit].get('run_name', '?')} lacks per-query results; "
                               "re-run its evaluation")
            q, values = S.per_query_values(per_query, test.metric)
            if queries is not None and not np.array_equal(q, queries):
                raise AEAError(f"{test.id}: the runs of generator seed {unit[0]} were evaluated on different "
                               "queries; evaluate them on the data sets of one generator seed")
            queries = q
            total = sign * values if total is None else total + sign * values
        out[unit] = total
    return out


def _side_status(side: int, low: float, high: float) -> str:
    if side * low > 0 and side * high > 0:
        return S.HOLDS
    if side * low < 0 and side * high < 0:
        return S.FAILS
    return S.INCONCLUSIVE


def _k2(runs: Mapping[RunKey, Mapping[Unit, Mapping[str, Any]]], test: Test) -> dict[str, Any]:
    """K2 by its rule on the units that ran both methods (mAP in percent, means over units)."""
    b2, b1 = (runs.get((test.variant, p, method), {}) for _, method, p in test.terms)
    units = sorted(set(b2) & set(b1))
    if not units:
        return {"verdict": S.NOT_EVALUABLE, "detail": "missing runs", "n_units": 0}
    chance = [100.0 * float(b1[u]["mechanism"]["chance_map_official"]) for u in units]
    mean_b2 = float(np.mean([100.0 * float(b2[u]["map_official"]) for u in units]))
    mean_b1 = float(np.mean([100.0 * float(b1[u]["map_official"]) for u in units]))
    level = float(np.mean(chance))
    holds = (mean_b2 - level) < K2_FRACTION * (mean_b1 - level)
    verdict = S.HOLDS if holds else S.FAILS
    if len(units) < S.MIN_SEEDS:
        verdict = S.INCONCLUSIVE
    return {"verdict": verdict, "n_units": len(units), "diff": mean_b2 - level,
            "detail": f"B2 {mean_b2:.2f}, B1 {mean_b1:.2f}, chance {level:.2f} mAP: B2 - chance = "
                      f"{mean_b2 - level:.2f} vs {K2_FRACTION} x (B1 - chance) = {K2_FRACTION * (mean_b1 - level):.2f}"}


def _verdict(test: Test, iv: S.Interval, holm_p: float) -> str:
    if iv.n_seeds < S.MIN_SEEDS:
        return S.INCONCLUSIVE
    if test.id == "K1":
        return S.FAILS if iv.low > 0 else S.HOLDS
    if test.id == "K3":
        if -K3_BOUND <= iv.low and iv.high <= K3_BOUND:
            return S.HOLDS
        return S.FAILS if iv.low > K3_BOUND or iv.high < -K3_BOUND else S.INCONCLUSIVE
    status = _side_status(test.side, iv.low, iv.high)
    if test.role == "prediction" and status == S.HOLDS and not holm_p < ALPHA:
        return S.INCONCLUSIVE
    return status


def build_mechanism(metrics: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per test of ``TESTS`` (columns ``COLUMNS``), decided as the module docstring says."""
    runs = index_runs(metrics)
    rows, family_p = [], {}
    for test in TESTS:
        row = {"id": test.id, "role": test.role, "statement": test.statement, "variant": test.variant, "p": test.p,
               "comparison": test.comparison, "metric": test.metric,
               "predicted": {1: "> 0", -1: "< 0", 0: "control"}[test.side]}
        if test.id == "K2":
            rows.append({**row, **_k2(runs, test)})
            continue
        diffs = unit_differences(test, runs)
        if not diffs:
            rows.append({**row, "n_units": 0, "verdict": S.NOT_EVALUABLE, "detail": "missing runs"})
            continue
        iv = S.paired_interval(list(diffs.values()))
        p = S.wilcoxon_p([d.mean() for d in diffs.values()])
        row.update(n_units=iv.n_seeds, n_queries=iv.n_queries, diff=iv.diff, low=iv.low, high=iv.high,
                   wilcoxon_p=p, detail=f"units (generator seed, training seed): {len(diffs)}", interval=iv)
        if test.id in HOLM_FAMILY:
            family_p[test.id] = p
        rows.append(row)
    adjusted = dict(zip(HOLM_FAMILY, S.holm([family_p.get(t, math.nan) for t in HOLM_FAMILY])))
    for row in rows:
        iv = row.pop("interval", None)
        if row["id"] in adjusted:
            row["holm_p"] = adjusted[row["id"]]
        if iv is not None:
            test = next(t for t in TESTS if t.id == row["id"])
            row["verdict"] = _verdict(test, iv, row.get("holm_p", math.nan))
    return pd.DataFrame(rows, columns=COLUMNS)


def gains(table: pd.DataFrame) -> pd.DataFrame:
    """AEA minus each reference (Baseline 1, the two controls) against p, mAP, from the table's rows."""
    sel = table[(table["metric"] == PRIMARY_METRIC) & (table["variant"] == "redundant")
                & table["comparison"].str.fullmatch(r"aea@p=[0-9.]+ - [a-z0-9]+@p=[0-9.]+")]
    sel = sel.assign(reference=sel["comparison"].str.extract(r"- ([a-z0-9]+)@")[0])
    sel = sel[sel["reference"].isin(list(GAIN_REFERENCES)) & sel["diff"].notna()]
    return sel[["reference", "p", "diff", "low", "high", "n_units"]].sort_values(["reference", "p"]).reset_index(
        drop=True)


def measures(metrics: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Per (variant, p, method): mean over units of the attention IoU and the erased / pixel share per part."""
    rows = []
    for (variant, p, method), by_unit in sorted(index_runs(metrics).items()):
        mech = [m["mechanism"] for m in by_unit.values()]
        row: dict[str, Any] = {"variant": variant, "p": p, "method": method, "n_units": len(mech)}
        ious = [x["attention_iou"]["mean"] for x in mech if "attention_iou" in x]
        row["attention_iou"] = float(np.mean(ious)) if ious else math.nan
        for key, prefix in (("erased_share_per_part", "erased"), ("pixel_share_per_part", "pixels")):
            shares = [x[key] for x in mech if key in x]
            for label in LABELS:
                row[f"{prefix}_{label}"] = float(np.mean([s[label] for s in shares])) if shares else math.nan
        rows.append(row)
    return pd.DataFrame(rows)


def c3_holds(row: Mapping[str, Any]) -> bool:
    """C3 on one measures row: the salient region has the largest erased share of all labels and at least twice
    its share of the image pixels."""
    erased = {label: row[f"erased_{label}"] for label in LABELS}
    salient = erased[SALIENT_REGION]
    return bool(salient == max(erased.values()) and salient >= 2 * row[f"pixels_{SALIENT_REGION}"])


def _num(value: Any, digits: int = 2) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def mechanism_markdown(table: pd.DataFrame, measured: pd.DataFrame, png_name: str) -> str:
    lines = ["# Mechanism experiment (docs/mechanism.md)", "",
             "Paired differences in percentage points over units (generator seed, training seed): 95% interval "
             "from the claims' bootstrap (units, then queries), two-sided Wilcoxon signed-rank p over the per-unit "
             f"differences, Holm-adjusted over {', '.join(HOLM_FAMILY)}. Secondary rows decide nothing.", "",
             "| id | role | statement | metric | difference [95% interval] | units | Wilcoxon p | Holm p | verdict |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in table.itertuples():
        if isinstance(r.diff, float) and not math.isnan(r.diff) and not math.isnan(r.low):
            cell = f"{r.diff:+.2f} [{r.low:+.2f}, {r.high:+.2f}]"
        else:
            cell = r.detail if isinstance(r.detail, str) else ""
        lines.append(f"| {r.id} | {r.role} | {r.statement} | {r.metric} | {cell} | {r.n_units} | "
                     f"{_num(r.wilcoxon_p, 4)} | {_num(r.holm_p, 4)} | {r.verdict} |")
    if len(measured):
        lines += ["", "## Attention measures (means over units)", "",
                  "IoU: the basic vs the complementary network's top-R% attention on the query images. Erased "
                  "share: the basic network's top-R% attention on each part label of the training images "
                  "(pixel share beside it). C3 is read on Baseline 1, redundant, p = 0.", "",
                  "| variant | p | method | units | IoU | " + " | ".join(f"erased {lb}" for lb in LABELS)
                  + f" | pixels {SALIENT_REGION} | C3 |",
                  "|---|---|---|---|---|" + "---|" * len(LABELS) + "---|---|"]
        for r in measured.to_dict("records"):
            c3_row = (r["method"], r["variant"], r["p"]) == ("baseline1", "redundant", 0.0)
            c3 = ("holds" if c3_holds(r) else "fails") if c3_row and not math.isnan(r["erased_upper"]) else ""
            lines.append(f"| {r['variant']} | {r['p']:g} | {r['method']} | {r['n_units']} | "
                         f"{_num(r['attention_iou'], 3)} | "
                         + " | ".join(_num(r[f"erased_{lb}"], 3) for lb in LABELS)
                         + f" | {_num(r[f'pixels_{SALIENT_REGION}'], 3)} | {c3} |")
    lines += ["", f"![gain of AEA against test-time occlusion p]({png_name})", ""]
    return "\n".join(lines)


def plot_gains(gain_table: pd.DataFrame, out_png: str | Path) -> None:
    """AEA minus each reference in official mAP against p, with 95% intervals (one line per reference)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5, 3.5), dpi=128)
    ax = fig.subplots()
    for i, (reference, label) in enumerate(GAIN_REFERENCES.items()):
        cur = gain_table[gain_table["reference"] == reference]
        if not len(cur):
            continue
        x = cur["p"].to_numpy(float) + (i - 1) * 0.008  # side by side, intervals readable
        y = cur["diff"].to_numpy(float)
        err = np.vstack([y - cur["low"].to_numpy(float), cur["high"].to_numpy(float) - y])
        ax.errorbar(x, y, yerr=np.nan_to_num(err), marker="o", markersize=4, capsize=3, label=f"AEA - {label}")
    ax.axhline(0.0, color="grey", linewidth=0.8)
    ax.set_xlabel("test-time occlusion probability p", fontsize=8)
    ax.set_ylabel("official mAP difference (points)", fontsize=8)
    ax.set_xticks([0.0, 0.2, 0.4])
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, format="png")


def mechanism_files(out_dir: str | Path) -> tuple[Path, Path, Path, Path]:
    """(csv, markdown, png, provenance) paths of the mechanism table in ``out_dir``."""
    out_dir = Path(out_dir)
    return (out_dir / f"{NAME}.csv", out_dir / f"{NAME}.md", out_dir / f"{NAME}.png",
            out_dir / f"{NAME}.provenance.json")


def make_mechanism(metrics_paths: Sequence[str | Path], out_dir: str | Path) -> pd.DataFrame:
    """``mechanism.csv`` + ``.md`` + ``.png`` (+ provenance) in ``out_dir`` from the runs' metrics files."""
    metrics = load_metrics(metrics_paths)
    table = build_mechanism(metrics)
    csv_path, md_path, png_path, provenance = mechanism_files(out_dir)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    write_csv(table, csv_path)
    plot_gains(gains(table), png_path)
    write_text(md_path, mechanism_markdown(table, measures(metrics), png_path.name))
    write_json(provenance, collect_provenance(NAME, metrics, list(metrics_paths)))
    return table
