"""The mechanism experiment on generator version 3 (docs/mechanism.md, "Generator version 3"): its registered
tests decided with the generator seed as the top unit.

Input: metrics.json files of runs on version-3 data (``aea evaluate`` writes their ``mechanism.data``: the data
set's generator version, variant, occlusion p, occluded region and generator seed). A run is identified by
(test set, method) and its unit (generator seed, training seed). Test sets: ``p0`` (no occluder), ``upper-p0.2``
and ``upper-p0.4`` (the upper body, torso and sleeves, hidden in each test image with probability p), ``any-p1``
(every test image hides one region drawn uniformly among those it shows: the per-region breakdown).

Statistics (registered before any method was compared):
  - Per unit, the paired difference is the mean over its test set's queries of the per-query difference (AP in
    percent for mAP, a 0/100 hit for rank-1). Per generator seed, the mean over its training seeds. The interval
    is the t interval over the generator seeds' means (``aea.stats.t_intervals``, df = generator seeds - 1): the
    generator seed is the top unit, so the interval covers the difference over the data sets the generator
    draws, training randomness included (each generator mean carries its training seeds' noise).
  - p: that t test's two-sided p, Holm-adjusted over the family ``HOLM_FAMILY``. The Wilcoxon signed-rank p over
    the generator means is reported and decides nothing.
Verdicts:
  prediction   ``holds`` when the 95% interval lies wholly on the predicted side and the Holm p < 0.05, ``fails``
               when it lies wholly on the other side and the Holm p < 0.05, ``inconclusive`` otherwise;
  comparison   (no predicted side) ``above 0`` / ``below 0`` when the 95% interval lies wholly on that side and the
               Holm p < 0.05, ``inconclusive`` otherwise;
  K3           equivalence (TOST at 5%, the 90% interval) of AEA - B1 at p = 0 within [-3, +3] mAP points:
               ``holds`` (equivalent) when the 90% interval lies within, ``fails`` (a difference beyond 3 points)
               when it lies wholly outside, ``inconclusive`` otherwise;
  check        the calibration's two checks read again at the evaluation seeds (Baseline 1 only): the upper-body
               coverage of its top-R% mask (``holds`` when the mean is >= ``COVERAGE_TARGET``) and torso reliance
               (``holds`` when Baseline 1's mean AP drop on the any-p1 queries whose upper body is hidden is the
               largest of the five regions' drops);
  secondary    (the comparisons at other p, rank-1, the per-region breakdown) the interval alone; decide nothing.
Fewer than 2 generator seeds never decide (``inconclusive``); a test without a unit is ``not evaluable``.
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
from aea.io import read_json, write_json, write_text
from aea.mechanism import LABELS, REGIONS, SALIENT_REGION
from aea.tables.aggregate import collect_provenance, load_metrics, write_csv
from aea.tables.mechanism import (
    ALPHA,
    GAIN_REFERENCES,
    K3_BOUND,
    NAME,
    PRIMARY_METRIC,
    SECONDARY_METRIC,
    TOST_LEVEL,
    Unit,
    num_text,
    plot_gain_lines,
    signed_per_query,
)

VERSION = 3
COVERAGE_TARGET = 0.75  # the calibration rule's share of the upper body Baseline 1's top-R% mask covers
TEST_SETS = ("p0", "upper-p0.2", "upper-p0.4", "any-p1")
BREAKDOWN_SET = "any-p1"
ABOVE, BELOW = "above 0", "below 0"
HOLM_FAMILY = ("P1a", "P1b", "P2", "P4", "P5", "E1", "E2")
COLUMNS = ["id", "role", "statement", "test_set", "comparison", "metric", "region", "predicted", "n_generators",
           "n_units", "diff", "low", "high", "df", "sd", "t_p", "holm_p", "wilcoxon_p", "low90", "high90", "verdict",
           "detail"]

RunKey = tuple[str, str]  # (test set, method)
Term = tuple[int, str, str]  # (sign, method, test set)


@dataclass(frozen=True)
class Test:
    """A paired comparison: per query, ``sum(sign * value)`` over ``terms`` (queries of ``region`` only when set)."""

    id: str
    role: str  # prediction, comparison, control, secondary
    statement: str
    terms: tuple[Term, ...]
    side: int  # +1 / -1 predicted side; 0: no side (comparison, control)
    metric: str = PRIMARY_METRIC
    region: str | None = None  # breakdown: only the any-p1 queries whose hidden region is this one

    @property
    def comparison(self) -> str:
        return " ".join(f"{'+' if s > 0 else '-'} {m}@{t}" for s, m, t in self.terms).lstrip("+ ")

    @property
    def test_set(self) -> str:
        return self.terms[0][2] if len({t for _, _, t in self.terms}) == 1 else "/".join(
            dict.fromkeys(t for _, _, t in self.terms))


def _vs(a: str, b: str, test_set: str) -> tuple[Term, ...]:
    return ((1, a, test_set), (-1, b, test_set))


PRIMARY = (
    Test("P1a", "prediction", "AEA beats Baseline 1 when the torso is hidden with p = 0.2", _vs("aea", "baseline1",
                                                                                                "upper-p0.2"), +1),
    Test("P1b", "prediction", "AEA beats Baseline 1 when the torso is hidden with p = 0.4", _vs("aea", "baseline1",
                                                                                                "upper-p0.4"), +1),
    Test("P2", "prediction", "AEA's gain over Baseline 1 grows from p = 0 to torso p = 0.4",
         (*_vs("aea", "baseline1", "upper-p0.4"), (-1, "aea", "p0"), (1, "baseline1", "p0")), +1),
    Test("P4", "prediction", "AEA beats two networks without erasing (torso p = 0.4)",
         _vs("aea", "noerase", "upper-p0.4"), +1),
    Test("P5", "prediction", "AEA beats two networks with random erasing of the same budget (torso p = 0.4)",
         _vs("aea", "randbudget", "upper-p0.4"), +1),
    Test("E1", "comparison", "two networks without erasing vs Baseline 1 (torso p = 0.4)",
         _vs("noerase", "baseline1", "upper-p0.4"), 0),
    Test("E2", "comparison", "two networks with random erasing vs Baseline 1 (torso p = 0.4)",
         _vs("randbudget", "baseline1", "upper-p0.4"), 0),
    Test("K3", "control", "p = 0: AEA roughly equals Baseline 1 (within 3 mAP points)", _vs("aea", "baseline1", "p0"),
         0),
)


def _secondary() -> tuple[Test, ...]:
    out = []
    for t in PRIMARY:
        if t.id in ("P4", "P5", "E1", "E2"):
            a, b = t.terms[0][1], t.terms[1][1]
            out += [Test(f"{t.id}@{ts}", "secondary", t.statement.replace("torso p = 0.4", ts), _vs(a, b, ts), t.side)
                    for ts in ("p0", "upper-p0.2")]
    out += [Test(f"{t.id}:rank1", "secondary", f"{t.statement} (rank-1)", t.terms, t.side, SECONDARY_METRIC)
            for t in PRIMARY]
    for region in REGIONS:
        out.append(Test(f"R-B1:{region}", "secondary", f"Baseline 1's AP drop when the {region} is hidden (any-p1 "
                        "queries hiding it, against the same queries at p = 0)",
                        ((1, "baseline1", "p0"), (-1, "baseline1", BREAKDOWN_SET)), 0, region=region))
    for ref in GAIN_REFERENCES:
        for region in REGIONS:
            out.append(Test(f"R-{ref}:{region}", "secondary", f"AEA vs {GAIN_REFERENCES[ref]} on the any-p1 queries "
                            f"hiding the {region}", _vs("aea", ref, BREAKDOWN_SET), 0, region=region))
    return tuple(out)


TESTS = PRIMARY + _secondary()
TEST_BY_ID = {t.id: t for t in TESTS}


def test_set_name(data: Mapping[str, Any]) -> str:
    """The test set of a version-3 data set's parameters: p0, or <occluded region>-p<p>."""
    p = float(data["occlusion"])
    return "p0" if p == 0.0 else f"{data.get('occluded_region', 'any')}-p{p:g}"


def is_version3(metrics: Sequence[Mapping[str, Any]]) -> bool:
    """Whether these runs were evaluated on generator-version-3 data (the v3 table reads them, not v2's)."""
    versions = {int(((m.get("mechanism") or {}).get("data") or {}).get("generator_version", 0)) for m in metrics}
    if VERSION in versions and len(versions) > 1:
        raise AEAError("the metrics mix generator version 3 with other data; give one experiment's runs")
    return versions == {VERSION}


def index_runs(metrics: Sequence[Mapping[str, Any]]) -> dict[RunKey, dict[Unit, Mapping[str, Any]]]:
    """Runs by (test set, method), then by unit; refuses runs not on version-3 data and duplicates."""
    runs: dict[RunKey, dict[Unit, Mapping[str, Any]]] = {}
    for m in metrics:
        data = (m.get("mechanism") or {}).get("data") or {}
        if int(data.get("generator_version", 0)) != VERSION:
            raise AEAError(f"run {m.get('run_name', '?')} (seed {m.get('seed', '?')}) was not evaluated on "
                           f"generator-version-{VERSION} data; evaluate it on a version-3 data set")
        key = (test_set_name(data), str(m["method"]))
        unit = (int(data["seed"]), int(m["seed"]))
        if unit in runs.setdefault(key, {}):
            raise AEAError(f"two runs of {key[1]} on {key[0]} for generator seed {unit[0]} and training seed "
                           f"{unit[1]}; give each run's metrics once")
        runs[key][unit] = m
    return runs


def unit_differences(test: Test, runs: Mapping[RunKey, Mapping[Unit, Mapping[str, Any]]],
                     regions: Mapping[int, Sequence[str | None]] | None = None) -> dict[Unit, float]:
    """Per unit having every run of the test: the mean over queries (of ``test.region`` only, when set) of the
    per-query difference, in percent. ``regions[g][q]``: the region query q of generator seed g's any-p1 set hides."""
    per_term = [runs.get((ts, method), {}) for _, method, ts in test.terms]
    units = sorted(set.intersection(*(set(r) for r in per_term)))
    out = {}
    for unit in units:
        queries, total = signed_per_query(test.id, test.metric, [(sign, term_runs[unit]) for (sign, _, _), term_runs
                                                                 in zip(test.terms, per_term)], unit[0])
        if test.region is not None:
            if regions is None or unit[0] not in regions:
                continue
            hidden = np.asarray(regions[unit[0]], dtype=object)
            keep = hidden[queries] == test.region
            if not keep.any():
                continue
            total = total[keep]
        out[unit] = float(np.mean(total))
    return out


def generator_means(unit_means: Mapping[Unit, float]) -> dict[int, float]:
    """Per generator seed, the mean over its training seeds' units."""
    by_gen: dict[int, list[float]] = {}
    for (gen, _), value in sorted(unit_means.items()):
        by_gen.setdefault(gen, []).append(value)
    return {gen: float(np.mean(v)) for gen, v in by_gen.items()}


@dataclass(frozen=True)
class Analysis:
    interval: S.Interval  # 95%, generator seeds as the unit
    tost: S.Interval  # 90%
    wilcoxon_p: float
    n_units: int


def analyse(unit_means: Mapping[Unit, float]) -> Analysis:
    means = list(generator_means(unit_means).values())
    interval, tost = S.t_intervals(means, (S.LEVEL, TOST_LEVEL))
    return Analysis(interval, tost, S.wilcoxon_p(means), len(unit_means))


def _verdict(test: Test, a: Analysis, holm_p: float) -> str:
    iv = a.interval
    if iv.n_seeds < S.MIN_SEEDS or math.isnan(iv.low):
        return S.INCONCLUSIVE
    if test.id == "K3":
        return S.equivalence_status(a.tost, K3_BOUND)
    decided = holm_p < ALPHA if test.role in ("prediction", "comparison") else True
    if test.role == "prediction":
        if not decided:
            return S.INCONCLUSIVE
        if test.side * iv.low > 0 and test.side * iv.high > 0:
            return S.HOLDS
        if test.side * iv.low < 0 and test.side * iv.high < 0:
            return S.FAILS
        return S.INCONCLUSIVE
    if iv.low > 0 and decided:
        return ABOVE
    if iv.high < 0 and decided:
        return BELOW
    return S.INCONCLUSIVE


def _coverage_check(runs: Mapping[RunKey, Mapping[Unit, Mapping[str, Any]]]) -> dict[str, Any]:
    """Upper-body coverage of Baseline 1's top-R% mask on the training images, from its p = 0 metrics: the mask's
    share on the upper body x R / the upper body's pixel share (the mask holds R% of the pixels)."""
    b1 = runs.get(("p0", "baseline1"), {})
    cov = []
    for m in b1.values():
        mech = m["mechanism"]
        if "erased_share_per_part" in mech:
            cov.append(mech["erased_share_per_part"][SALIENT_REGION] * float(mech["erase_ratio"]) / 100.0
                       / mech["pixel_share_per_part"][SALIENT_REGION])
    if not cov:
        return {"verdict": S.NOT_EVALUABLE, "detail": "missing runs", "n_units": 0}
    mean = float(np.mean(cov))
    return {"verdict": S.HOLDS if mean >= COVERAGE_TARGET else S.FAILS, "n_units": len(cov), "diff": mean,
            "detail": f"mean upper-body coverage of Baseline 1's top-R% mask {mean:.3f} (min {min(cov):.3f}, max "
                      f"{max(cov):.3f}) vs the target {COVERAGE_TARGET}"}


def _reliance_check(rows: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    drops = {r: rows[f"R-B1:{r}"].get("diff", math.nan) for r in REGIONS}
    if any(math.isnan(d) for d in drops.values()):
        return {"verdict": S.NOT_EVALUABLE, "detail": "missing runs or regions", "n_units": 0}
    largest = max(drops, key=lambda r: drops[r])
    return {"verdict": S.HOLDS if largest == SALIENT_REGION else S.FAILS,
            "diff": drops[SALIENT_REGION] - max(v for r, v in drops.items() if r != SALIENT_REGION),
            "detail": "Baseline 1's mean AP drop (points) by hidden region: "
                      + ", ".join(f"{r} {d:.2f}" for r, d in drops.items())}


def build_mechanism_v3(metrics: Sequence[Mapping[str, Any]],
                       regions: Mapping[int, Sequence[str | None]] | None = None) -> pd.DataFrame:
    """One row per test of ``TESTS`` and the two checks (columns ``COLUMNS``), decided as the module docstring says.
    ``regions``: per generator seed, the region each any-p1 query hides (``query_regions``)."""
    runs = index_runs(metrics)
    rows: dict[str, dict[str, Any]] = {}
    analyses: dict[str, Analysis] = {}
    for test in TESTS:
        row = {"id": test.id, "role": test.role, "statement": test.statement, "test_set": test.test_set,
               "comparison": test.comparison, "metric": test.metric, "region": test.region or "",
               "predicted": {1: "> 0", -1: "< 0", 0: "two-sided"}[test.side]}
        diffs = unit_differences(test, runs, regions)
        if not diffs:
            rows[test.id] = {**row, "n_units": 0, "verdict": S.NOT_EVALUABLE, "detail": "missing runs"}
            continue
        a = analyses[test.id] = analyse(diffs)
        iv = a.interval
        rows[test.id] = {**row, "n_generators": iv.n_seeds, "n_units": a.n_units, "diff": iv.diff, "low": iv.low,
                         "high": iv.high, "df": iv.df, "sd": iv.sd, "t_p": iv.p_value, "wilcoxon_p": a.wilcoxon_p,
                         "low90": a.tost.low, "high90": a.tost.high,
                         "detail": f"{a.n_units} units on {iv.n_seeds} generated data sets"}
    adjusted = dict(zip(HOLM_FAMILY, S.holm([analyses[t].interval.p_value if t in analyses else math.nan
                                             for t in HOLM_FAMILY])))
    for tid, row in rows.items():
        if tid in adjusted:
            row["holm_p"] = adjusted[tid]
        if tid in analyses:
            row["verdict"] = _verdict(TEST_BY_ID[tid], analyses[tid], row.get("holm_p", math.nan))
    checks = [{"id": "coverage", "role": "check", "statement": "Baseline 1's top-R% mask covers the registered "
               f"share ({COVERAGE_TARGET}) of the upper body (training images, p = 0)", "test_set": "p0",
               **_coverage_check(runs)},
              {"id": "reliance", "role": "check", "statement": "Baseline 1 relies on the torso most: its AP drop is "
               "largest on the any-p1 queries hiding the upper body", "test_set": BREAKDOWN_SET,
               **_reliance_check(rows)}]
    return pd.DataFrame([*rows.values(), *checks], columns=COLUMNS)


def query_regions(test_root: str | Path) -> list[str | None]:
    """The region each query (in the parser's listing order, the index of ``per_query``) of a generated release
    hides, from the generator's images.json; None for an unoccluded query."""
    from aea.data.bodyparts import IMAGES_NAME, parts_dir
    from aea.data.datasets import SPLIT_FOLDERS, load_dataset

    release = Path(test_root)
    records = read_json(parts_dir(release) / IMAGES_NAME)
    split = load_dataset("market1501", release.parent)
    return [records[f"{SPLIT_FOLDERS['query']}/{Path(r.path).name}"]["occluded"] for r in split.query]


def regions_of(metrics: Sequence[Mapping[str, Any]]) -> dict[int, list[str | None]]:
    """Per generator seed, ``query_regions`` of its any-p1 test set (read from the runs' test roots)."""
    out: dict[int, list[str | None]] = {}
    for m in metrics:
        data = m["mechanism"]["data"]
        if test_set_name(data) == BREAKDOWN_SET and int(data["seed"]) not in out:
            out[int(data["seed"])] = query_regions(m["test_root"])
    return out


def unit_table(metrics: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Every run's official mAP and rank-1 (percent) by test set, method and unit: the table's numbers' source."""
    rows = [{"test_set": test_set_name(m["mechanism"]["data"]), "method": m["method"],
             "generator_seed": int(m["mechanism"]["data"]["seed"]), "training_seed": int(m["seed"]),
             "map_official": 100.0 * float(m["map_official"]), "rank1": 100.0 * float(m["rank1"])} for m in metrics]
    return pd.DataFrame(rows).sort_values(["test_set", "method", "generator_seed", "training_seed"]).reset_index(
        drop=True)


def _cell(r: Any) -> str:
    if not isinstance(r.low, float) or math.isnan(r.low):
        return r.detail if isinstance(r.detail, str) else ""
    cell = f"{r.diff:+.2f} [{r.low:+.2f}, {r.high:+.2f}]"
    return cell + (f"; 90% [{r.low90:+.2f}, {r.high90:+.2f}]" if r.id == "K3" else "")


def mechanism_v3_markdown(table: pd.DataFrame, units: pd.DataFrame, png_name: str) -> str:
    lines = ["# Mechanism experiment, generator version 3 (docs/mechanism.md)", "",
             "Paired differences in percentage points. Unit: the generator seed (a generated data set); each "
             "generator seed's difference is the mean over its training seeds; 95% t interval over the generator "
             "seeds (df = generator seeds - 1). Holm over " + ", ".join(HOLM_FAMILY) + ". A prediction holds (fails) "
             "when its interval lies wholly on the predicted (other) side and its Holm p < 0.05; a registered "
             "comparison is above or below 0 under the same rule; K3: TOST, 90% interval within [-3, +3]. "
             "Secondary rows decide nothing. Test sets: p0 no occluder; upper-p0.2 / upper-p0.4 the torso hidden "
             "with probability p; any-p1 every test image hides one region (the breakdown by the query's hidden "
             "region).", "",
             "| id | role | statement | metric | difference [95% interval] | generators | units | t p | Holm p | "
             "verdict |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in table.itertuples():
        lines.append(f"| {r.id} | {r.role} | {r.statement} | {r.metric} | {_cell(r)} | {num_text(r.n_generators, 0)} | "
                     f"{num_text(r.n_units, 0)} | {num_text(r.t_p, 4)} | {num_text(r.holm_p, 4)} | {r.verdict} |")
    if len(units):
        means = units.groupby(["test_set", "method"])["map_official"].agg(["mean", "std", "count"]).reset_index()
        lines += ["", "## Mean official mAP over the units (%, sample SD)", "",
                  "| test set | " + " | ".join(sorted(set(means["method"]))) + " |",
                  "|---|" + "---|" * len(set(means["method"]))]
        for ts in [t for t in TEST_SETS if t in set(means["test_set"])]:
            cur = means[means["test_set"] == ts].set_index("method")
            lines.append(f"| {ts} | " + " | ".join(
                f"{cur.loc[m, 'mean']:.1f} ± {num_text(cur.loc[m, 'std'], 1)}" if m in cur.index else ""
                for m in sorted(set(means["method"]))) + " |")
    lines += ["", f"![gain of AEA when the torso is hidden]({png_name})", ""]
    return "\n".join(lines)


def plot_gains(table: pd.DataFrame, out_png: str | Path) -> None:
    """AEA minus each reference in official mAP on p0, upper-p0.2, upper-p0.4, with 95% generator-level intervals."""
    xs = {"p0": 0.0, "upper-p0.2": 0.2, "upper-p0.4": 0.4}
    lines = []
    for ref, label in GAIN_REFERENCES.items():
        sel = table[(table["metric"] == PRIMARY_METRIC) & (table["region"] == "")
                    & table["comparison"].isin([f"aea@{ts} - {ref}@{ts}" for ts in xs]) & table["low"].notna()]
        if len(sel):
            lines.append((label, np.array([xs[ts] for ts in sel["test_set"]]), sel["diff"].to_numpy(float),
                          sel["low"].to_numpy(float), sel["high"].to_numpy(float)))
    plot_gain_lines(lines, out_png, xlabel="probability p that a test image's torso is hidden",
                    title="95% intervals over generator seeds")


def make_mechanism_v3(metrics_paths: Sequence[str | Path], out_dir: str | Path,
                      metrics: Sequence[Mapping[str, Any]] | None = None) -> pd.DataFrame:
    """``mechanism.csv`` + ``.md`` + ``.png`` + ``.units.csv`` (+ provenance) in ``out_dir`` from version-3 runs."""
    metrics = load_metrics(metrics_paths) if metrics is None else metrics
    table = build_mechanism_v3(metrics, regions_of(metrics))
    units = unit_table(metrics)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_csv(table, out_dir / f"{NAME}.csv")
    write_csv(units, out_dir / f"{NAME}.units.csv")
    plot_gains(table, out_dir / f"{NAME}.png")
    write_text(out_dir / f"{NAME}.md", mechanism_v3_markdown(table, units, f"{NAME}.png"))
    write_json(out_dir / f"{NAME}.provenance.json", collect_provenance(NAME, metrics, list(metrics_paths)))
    return table


__all__ = ["LABELS", "TESTS", "build_mechanism_v3", "make_mechanism_v3", "is_version3"]
