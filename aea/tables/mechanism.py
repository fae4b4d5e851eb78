"""The mechanism experiment's table (docs/mechanism.md): each pre-registered prediction and control decided.

Input: metrics.json files of runs on generator-version-2 data (``aea evaluate`` writes their ``mechanism``
record: the data set's variant, test-time occlusion p and generator seed). A run is identified by
(variant, p, method) and its unit, the pair (generator seed, training seed).

Every test is a paired difference per unit and per query, ``sum(sign * value(method, p))`` over its terms
(AEA - B1 at one p; (AEA - B1 at 0.2) - (AEA - B1 at 0) for P2), over the units that have all its runs; the
difference of a unit is the mean over its test set's queries, and the reported difference the mean of the
per-generator-seed means (with 5 training seeds per generator seed: the mean over the units).

This is the analysis corrected after the registered results ("Analysis correction (after results)" in
docs/mechanism.md; the registered one treated the 10 units as independent and used a bootstrap):
  - The units are not independent: the 5 training seeds of one generator seed share its generated training
    and test set, so the variation between generated data sets shows only through the 2 generator seeds. An
    interval with the generator seed as the unit has 1 degree of freedom (t = 12.7 at 95%) and can decide
    nothing. So the **primary interval is conditional on the generated data sets**: ``aea.stats.
    stratified_intervals`` with the generator seed as stratum (mean of the stratum means, pooled within-stratum
    SD, df = units - generator seeds). It covers the difference on *these* data sets, training randomness
    averaged out, not on the population of data sets the generator could draw.
  - Beside it, the **generator-level interval** (columns ``gen_*``): the t interval on the per-generator-seed
    means, df = generator seeds - 1 (``aea.stats.t_intervals``). It decides nothing here; with >= 5 generator
    seeds it is the interval to take as primary.
  - p-value: the t test of the conditional interval (``Interval.p_value``), Holm-adjusted over the family
    P1a, P1b, P2a, P2b, P3, P4, P5, K1 (a test that cannot be evaluated counts as p = 1). The registered
    Wilcoxon signed-rank p over the units (two-sided) is reported in ``wilcoxon_p`` and no longer decides.
Verdicts:
  prediction   ``holds`` when the conditional 95% interval lies wholly on the predicted side and the Holm-
               adjusted p < 0.05, ``fails`` when it lies wholly on the other side and the Holm-adjusted p < 0.05
               (corrected for multiplicity as ``holds`` is), ``inconclusive`` otherwise;
  K1           as registered: ``holds`` unless the conditional 95% interval of AEA - B1 (single-cue, p = 0) lies
               wholly above 0 (then ``fails``);
  K2           as registered: ``holds`` when (B2 - chance) < 0.25 (B1 - chance) in mean official mAP over the
               units (chance: the runs' mean mAP of 10 seeded random rankings of the test set), else ``fails``;
  K3           an equivalence test (TOST at 5%: the conditional 90% interval, ``low90``/``high90``; the
               registered text's 95% interval would be 2.5% per side) of AEA - B1 (redundant, p = 0) within
               [-3, +3] mAP points (``aea.stats.equivalence_status``): ``holds`` (equivalent) when it lies within,
               ``fails`` (a difference beyond 3 points shown) when it lies wholly outside, ``inconclusive``
               otherwise;
  secondary    (P4/P5 at p = 0 and 0.2, every test in rank-1) the conditional interval's side alone, raw p
               values; they decide nothing.
Fewer than ``aea.stats.MIN_SEEDS`` units, or no interval (df < 1), never decide (``inconclusive``); a test
without any unit is ``not evaluable``. Pure functions; matplotlib is imported only by ``plot_gains``.
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
TOST_LEVEL = 0.90  # a two-sided equivalence test at 5% (two one-sided tests)
PRIMARY_METRIC, SECONDARY_METRIC = "mAP", "rank1"
HOLM_FAMILY = ("P1a", "P1b", "P2a", "P2b", "P3", "P4", "P5", "K1")
COLUMNS = ["id", "role", "statement", "variant", "p", "comparison", "metric", "predicted", "n_units", "n_generators",
           "n_queries", "diff", "low", "high", "df", "t_p", "holm_p", "wilcoxon_p", "low90", "high90", "gen_low",
           "gen_high", "gen_df", "verdict", "detail"]
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
TEST_BY_ID = {t.id: t for t in TESTS}


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
    return {unit: signed_per_query(test.id, test.metric, [(sign, term_runs[unit]) for (sign, _, _), term_runs
                                                          in zip(test.terms, per_term)], unit[0])[1]
            for unit in units}


def signed_per_query(test_id: str, metric: str, signed_runs: Sequence[tuple[int, Mapping[str, Any]]],
                     generator: int) -> tuple[np.ndarray, np.ndarray]:
    """(query ids, per query the sum of sign x the run's value of ``metric`` in percent) over the runs of one unit
    of a test (generator versions 2 and 3); refuses runs without per-query results or on different queries."""
    queries, total = None, None
    for sign, run in signed_runs:
        per_query = run.get("per_query")
        if per_query is None:
            raise AEAError(f"run {run.get('run_name', '?')} lacks per-query results; re-run its evaluation")
        q, values = S.per_query_values(per_query, metric)
        if queries is not None and not np.array_equal(q, queries):
            raise AEAError(f"{test_id}: the runs of generator seed {generator} were evaluated on different "
                           "queries; evaluate them on the data sets of one generator seed")
        queries, total = q, (sign * values if total is None else total + sign * values)
    return queries, total


@dataclass(frozen=True)
class Analysis:
    """One test's intervals (module docstring): conditional on the generated data sets at 95% and at the TOST's
    90%, the generator-level one at 95%, and the registered Wilcoxon p over the units (reported only)."""

    conditional: S.Interval
    tost: S.Interval
    generator: S.Interval
    wilcoxon_p: float
    n_generators: int


def generator_strata(unit_means: Mapping[Unit, float]) -> list[list[float]]:
    """The per-unit means grouped by generator seed (the units that share a generated data set), in seed order."""
    strata: dict[int, list[float]] = {}
    for (gen, _), mean in sorted(unit_means.items()):
        strata.setdefault(gen, []).append(float(mean))
    return list(strata.values())


def analyse(diffs: Mapping[Unit, np.ndarray]) -> Analysis:
    """The intervals and p-values of one test from its per-unit, per-query differences."""
    means = dict(zip(diffs, S.seed_means(list(diffs.values()))))
    strata = generator_strata(means)
    n_queries = sum({gen: len(d) for (gen, _), d in diffs.items()}.values())  # one test set per generator seed
    conditional, tost = S.stratified_intervals(strata, (S.LEVEL, TOST_LEVEL), n_queries)
    (generator,) = S.t_intervals([float(np.mean(s)) for s in strata], (S.LEVEL,), n_queries)
    return Analysis(conditional, tost, generator, S.wilcoxon_p(list(means.values())), len(strata))


def _fields(a: Analysis) -> dict[str, Any]:
    iv = a.conditional
    return {"n_units": iv.n_seeds, "n_generators": a.n_generators, "n_queries": iv.n_queries, "diff": iv.diff,
            "low": iv.low, "high": iv.high, "df": iv.df, "t_p": iv.p_value, "wilcoxon_p": a.wilcoxon_p,
            "low90": a.tost.low, "high90": a.tost.high, "gen_low": a.generator.low, "gen_high": a.generator.high,
            "gen_df": a.generator.df,
            "detail": f"{iv.n_seeds} units (generator seed, training seed) on {a.n_generators} generated data sets"}


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
    return {"verdict": verdict, "n_units": len(units), "n_generators": len({g for g, _ in units}),
            "diff": mean_b2 - level,
            "detail": f"B2 {mean_b2:.2f}, B1 {mean_b1:.2f}, chance {level:.2f} mAP: B2 - chance = "
                      f"{mean_b2 - level:.2f} vs {K2_FRACTION} x (B1 - chance) = {K2_FRACTION * (mean_b1 - level):.2f}"}


def _verdict(test: Test, a: Analysis, holm_p: float) -> str:
    iv = a.conditional
    if iv.n_seeds < S.MIN_SEEDS or math.isnan(iv.low):
        return S.INCONCLUSIVE
    if test.id == "K1":
        return S.FAILS if iv.low > 0 else S.HOLDS
    if test.id == "K3":
        return S.equivalence_status(a.tost, K3_BOUND)
    if test.role == "prediction" and not holm_p < ALPHA:
        return S.INCONCLUSIVE
    return _side_status(test.side, iv.low, iv.high)


def build_mechanism(metrics: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per test of ``TESTS`` (columns ``COLUMNS``), decided as the module docstring says."""
    runs = index_runs(metrics)
    rows, analyses = [], {}
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
        analyses[test.id] = analyse(diffs)
        rows.append({**row, **_fields(analyses[test.id])})
    family_p = [analyses[t].conditional.p_value if t in analyses else math.nan for t in HOLM_FAMILY]
    adjusted = dict(zip(HOLM_FAMILY, S.holm(family_p)))
    for row in rows:
        if row["id"] in adjusted:
            row["holm_p"] = adjusted[row["id"]]
        if row["id"] in analyses:
            row["verdict"] = _verdict(TEST_BY_ID[row["id"]], analyses[row["id"]], row.get("holm_p", math.nan))
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


def num_text(value: Any, digits: int = 2) -> str:
    """``value`` with ``digits`` decimals; empty for a missing one (None, NaN)."""
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _cell(r: Any) -> str:
    """The difference with its conditional 95% interval (K3: and the TOST's 90%), or the row's detail."""
    if not (isinstance(r.diff, float) and not math.isnan(r.diff) and not math.isnan(r.low)):
        return r.detail if isinstance(r.detail, str) else ""
    cell = f"{r.diff:+.2f} [{r.low:+.2f}, {r.high:+.2f}]"
    return cell + (f"; 90% [{r.low90:+.2f}, {r.high90:+.2f}]" if r.id == "K3" else "")


def _generator_cell(r: Any) -> str:
    if not isinstance(r.gen_low, float) or math.isnan(r.gen_low):
        return ""
    return f"[{r.gen_low:+.2f}, {r.gen_high:+.2f}] ({num_text(r.gen_df, 0)})"


def mechanism_markdown(table: pd.DataFrame, measured: pd.DataFrame, png_name: str) -> str:
    lines = ["# Mechanism experiment (docs/mechanism.md)", "",
             "Paired differences in percentage points over units (generator seed, training seed). The analysis "
             "corrected after the registered results (docs/mechanism.md, \"Analysis correction (after results)\"; "
             "the registered analysis and its outcomes stay there): the 5 training seeds of a generator seed share "
             "its generated training and test set, so the units are not independent, and 2 generator seeds give "
             "a generator-level interval 1 degree of freedom. The primary 95% interval is therefore **conditional "
             "on the generated data sets**: generator seed as stratum, pooled within-stratum SD, df = units - "
             "generator seeds; it covers the difference on these data sets, not on the generator's population. "
             "The generator-level 95% interval (t on the per-generator-seed means, df in brackets) is shown beside "
             "it and decides nothing. t p: the conditional interval's t test; Holm-adjusted over "
             f"{', '.join(HOLM_FAMILY)}. A prediction holds (or fails) when its interval lies wholly on the "
             "predicted (or the other) side and its Holm p < 0.05, else it is inconclusive. K1: holds unless the "
             "interval lies wholly above 0. K3: equivalence test (TOST, 90% interval) within [-3, +3]: holds = "
             "equivalent, fails = a difference beyond 3 points shown, inconclusive otherwise. The Wilcoxon p (the "
             "registered test) is reported and no longer decides. Secondary rows decide nothing.", "",
             "| id | role | statement | metric | difference [95% interval, conditional] | units | df | "
             "generator-level 95% (df) | t p | Holm p | Wilcoxon p | verdict |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in table.itertuples():
        lines.append(f"| {r.id} | {r.role} | {r.statement} | {r.metric} | {_cell(r)} | {r.n_units} | "
                     f"{num_text(r.df, 0)} | {_generator_cell(r)} | {num_text(r.t_p, 4)} | {num_text(r.holm_p, 4)} | "
                     f"{num_text(r.wilcoxon_p, 4)} | {r.verdict} |")
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
                         f"{num_text(r['attention_iou'], 3)} | "
                         + " | ".join(num_text(r[f"erased_{lb}"], 3) for lb in LABELS)
                         + f" | {num_text(r[f'pixels_{SALIENT_REGION}'], 3)} | {c3} |")
    lines += ["", f"![gain of AEA against test-time occlusion p]({png_name})", ""]
    return "\n".join(lines)


def plot_gains(gain_table: pd.DataFrame, out_png: str | Path) -> None:
    """AEA minus each reference in official mAP against p, with 95% intervals conditional on the generated data
    sets (one line per reference)."""
    lines = []
    for reference, label in GAIN_REFERENCES.items():
        cur = gain_table[gain_table["reference"] == reference]
        if len(cur):
            lines.append((label, cur["p"].to_numpy(float), cur["diff"].to_numpy(float), cur["low"].to_numpy(float),
                          cur["high"].to_numpy(float)))
    plot_gain_lines(lines, out_png, xlabel="test-time occlusion probability p",
                    title="95% intervals conditional on the generated data sets")


def plot_gain_lines(lines: Sequence[tuple[str, np.ndarray, np.ndarray, np.ndarray, np.ndarray]], out_png: str | Path,
                    *, xlabel: str, title: str) -> None:
    """The mechanism tables' figure (generator versions 2 and 3): one line per (reference label, p, difference, low,
    high) of AEA minus that reference in official mAP points at p = 0, 0.2, 0.4, with its 95% intervals; the lines
    are set side by side so that the intervals stay readable."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5, 3.5), dpi=128)
    ax = fig.subplots()
    for i, (label, p, diff, low, high) in enumerate(lines):
        order = np.argsort(p, kind="stable")
        x, y = p[order] + (i - 1) * 0.008, diff[order]
        err = np.vstack([y - low[order], high[order] - y])
        ax.errorbar(x, y, yerr=np.nan_to_num(err), marker="o", markersize=4, capsize=3, label=f"AEA - {label}")
    ax.axhline(0.0, color="grey", linewidth=0.8)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel("official mAP difference (points)", fontsize=8)
    ax.set_title(title, fontsize=8)
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
    """``mechanism.csv`` + ``.md`` + ``.png`` (+ provenance) in ``out_dir`` from the runs' metrics files; runs on
    generator-version-3 data get the version-3 analysis (``aea.tables.mechanism_v3``)."""
    metrics = load_metrics(metrics_paths)
    from aea.tables import mechanism_v3

    if mechanism_v3.is_version3(metrics):
        return mechanism_v3.make_mechanism_v3(metrics_paths, out_dir, metrics)
    table = build_mechanism(metrics)
    csv_path, md_path, png_path, provenance = mechanism_files(out_dir)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    write_csv(table, csv_path)
    plot_gains(gains(table), png_path)
    write_text(md_path, mechanism_markdown(table, measures(metrics), png_path.name))
    write_json(provenance, collect_provenance(NAME, metrics, list(metrics_paths)))
    return table
