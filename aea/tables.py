"""Run metrics -> the paper's tables, and the diff of those tables against the paper.

One registry (``TABLES``) says which runs make each table; ``table_runs`` turns it
into the (dataset, method, overrides) list the workflow trains.  Tables are tidy
DataFrames, one row per (method, dataset, setting, metric) cell:

* key columns ``table, method, dataset, setting, metric``; ``setting`` is the
  run's overrides as text (``"default"``, ``"erase_ratio=20"``,
  ``"alpha1=0.5;alpha2=1.5"``), so a cell of ours and a cell of the paper's
  reference CSV (``results/paper/<table>.csv``) share one key;
* one column per swept parameter of the table (``erase_ratio``, ``margin``, ...)
  holding the parsed value, for filtering and plotting;
* statistics over seeds in percent, full precision (rounding happens only in
  the markdown report): ``mean``, ``std`` (sample std, ddof=1; NaN with one
  seed because one sample has no spread, and 0 would claim certainty we do not
  have), ``min``, ``max``, ``n_seeds``, ``seeds``.

``mAP`` is the official Market-1501 (trapezoid) AP; the non-interpolated
(torchreid-style) mAP is reported beside it as ``mAP_noninterp`` because the
paper does not say which one it printed.  The diff uses ``mAP``.

The diff against the paper: ``delta`` = our mean - the paper's value;
``within_spread`` says whether the paper's value lies in our seeds' min..max
(widened by 0.05 for the paper's one-decimal rounding; min..max rather than
mean +- std because a handful of seeds estimates a std poorly), "n/a (1 seed)"
with one seed, and "paper value unknown" where the reference CSV cell is empty;
no paper value is ever guessed.  The paper's worded claims are checked on our
means: "beats" is strict and needs every cell (any counterexample fails it,
otherwise missing cells make it "not evaluable"); "X is best" allows ties and is
judged on the settings that were run.  Tables 7/8 (the alpha1 x alpha2 study,
bodies unavailable) are defined as table7 = rank-1 grid, table8 = mAP grid.
"""

from __future__ import annotations

import csv
import itertools
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, NamedTuple, Sequence

import numpy as np
import pandas as pd

from aea.config import DATASETS, format_value, run_name
from aea.errors import AEAError
from aea.io import atomic_path, read_json, write_json, write_text
from aea.viz import plot_sweep

log = logging.getLogger(__name__)

DATASET_LABELS = {
    "market1501": "Market-1501",
    "cuhk03-labeled": "CUHK03 labeled",
    "cuhk03-detected": "CUHK03 detected",
    "dukemtmcreid": "DukeMTMC-reID",
}
METHOD_LABELS = {
    "aea": "AEA",
    "baseline1": "Baseline 1",
    "baseline2": "Baseline 2",
    "baseline3": "Baseline 3",
    "baseline4": "Baseline 4",
    "reda": "REDA",
    "aos": "AOS",
}
# table metric -> metrics.json field (fractions there, percent here)
METRIC_FIELDS = {"rank1": "rank1", "mAP": "map_official", "mAP_noninterp": "map_noninterp"}
CUHK03 = ("cuhk03-labeled", "cuhk03-detected")
DEFAULT_SETTING = "default"
KEY_COLUMNS = ["table", "method", "dataset", "setting", "metric"]
STAT_COLUMNS = ["profile", "run_name", "n_seeds", "seeds", "mean", "std", "min", "max"]
PAPER_VALUE_COLUMNS = ["value", "source"]
PEER_COLUMNS = KEY_COLUMNS + ["value", "source", "description"]
DIFF_VALUE_COLUMNS = ["profile", "paper", "source", "ours", "std", "min", "max", "n_seeds", "seeds",
                      "delta", "within_spread"]
# The paper prints one decimal: its value stands for anything within +-0.05.
PAPER_ROUNDING = 0.05
HOLDS, FAILS, NOT_EVALUABLE = "holds", "fails", "not evaluable"
PAPER_TEXT_SOURCE = "paper text (abstract/experiments)"


@dataclass(frozen=True)
class TableSpec:
    """What one paper table or figure is made of.

    Runs are every method x dataset x the cartesian product of ``values`` over
    ``params`` (no params: one default run per method and dataset);
    ``extra_values`` adds per-dataset values (Fig. 7's m = 0.35 on CUHK03).
    """

    name: str
    paper_ref: str
    methods: tuple[str, ...]
    datasets: tuple[str, ...]
    metrics: tuple[str, ...]
    params: tuple[str, ...] = ()
    values: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    extra_values: Mapping[str, Mapping[str, tuple[Any, ...]]] = field(default_factory=dict)
    figure_param: str | None = None


_ALPHAS = (0.1, 0.5, 1.0, 1.5, 2.0)
TABLES: dict[str, TableSpec] = {
    spec.name: spec
    for spec in (
        TableSpec("table2", "Table 2", ("aea", "baseline1", "baseline2", "baseline3", "baseline4"),
                  DATASETS, ("rank1", "mAP")),
        TableSpec("table6", "Table 6", ("reda", "aos", "aea"), DATASETS, ("rank1", "mAP")),
        # Tables 7/8 are the alpha1 x alpha2 study; their bodies are unavailable, so we define
        # table7 = the rank-1 grid and table8 = the mAP grid (same runs).
        TableSpec("table7", "Table 7", ("aea",), ("market1501",), ("rank1",),
                  ("alpha1", "alpha2"), {"alpha1": _ALPHAS, "alpha2": _ALPHAS}),
        TableSpec("table8", "Table 8", ("aea",), ("market1501",), ("mAP",),
                  ("alpha1", "alpha2"), {"alpha1": _ALPHAS, "alpha2": _ALPHAS}),
        TableSpec("table9", "Table 9", ("aea",), ("market1501",), ("rank1", "mAP"),
                  ("erase_layer",), {"erase_layer": ("conv1", "conv2", "conv3", "conv4", "conv5")}),
        TableSpec("fig6", "Fig. 6", ("aea",), DATASETS, ("rank1", "mAP"),
                  ("erase_ratio",), {"erase_ratio": (5.0, 10.0, 15.0, 20.0, 25.0, 30.0)},
                  figure_param="erase_ratio"),
        TableSpec("fig7", "Fig. 7", ("aea",), DATASETS, ("rank1", "mAP"),
                  ("margin",), {"margin": (0.1, 0.2, 0.3, 0.4, 0.5)},
                  {ds: {"margin": (0.35,)} for ds in CUHK03}, figure_param="margin"),
    )
}


class RunSpec(NamedTuple):
    """One run a table needs (seeds come on top)."""

    dataset: str
    method: str
    overrides: dict[str, float | str]


# ---------------------------------------------------------------- registry


def get_spec(name: str) -> TableSpec:
    if name not in TABLES:
        raise AEAError(f"unknown table {name!r}; choose one of {', '.join(TABLES)}")
    return TABLES[name]


def _norm_value(value: Any) -> float | str:
    """Override values as the run configs hold them: numbers as float, layer names as str."""
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return float(value)
    return str(value)


def _sort_value(value: Any) -> tuple[int, float, str]:
    value = _norm_value(value)
    return (0, value, "") if isinstance(value, float) else (1, 0.0, value)


def param_values(name: str, dataset: str, values: Mapping[str, Sequence[Any]] | None = None
                 ) -> dict[str, list[float | str]]:
    """Values swept per parameter for ``dataset``: ``values`` if given, else the paper's.

    Given ``values`` replace the registry's per parameter; the per-dataset extras (CUHK03's own
    m = 0.35, which its claim is about) are always included: they are the dataset's default run.
    """
    spec = get_spec(name)
    unknown = sorted(set(values or {}) - set(spec.params))
    if unknown:
        raise AEAError(f"{name} sweeps {', '.join(spec.params) or 'no parameter'}, "
                       f"not {', '.join(unknown)}; drop those values")
    out = {}
    for p in spec.params:
        given = values[p] if values is not None and p in values else spec.values[p]
        chosen = [_norm_value(v) for v in given]
        chosen += [_norm_value(v) for v in spec.extra_values.get(dataset, {}).get(p, ())]
        out[p] = sorted(set(chosen), key=_sort_value)
    return out


def table_runs(name: str, datasets: Sequence[str] | None = None,
               values: Mapping[str, Sequence[Any]] | None = None) -> list[RunSpec]:
    """The runs table ``name`` needs, in table order.

    ``datasets`` defaults to the table's (all four, Market-1501 only for the
    alpha and layer studies); ``values`` replaces the swept values per parameter.
    """
    spec = get_spec(name)
    datasets = spec.datasets if datasets is None else tuple(datasets)
    for ds in datasets:
        if ds not in DATASETS:
            raise AEAError(f"unknown dataset {ds!r} for {name}; choose from {', '.join(DATASETS)}")
    runs = []
    for ds in datasets:
        grid = param_values(name, ds, values)
        for method in spec.methods:
            for combo in itertools.product(*(grid[p] for p in spec.params)):
                runs.append(RunSpec(ds, method, dict(zip(spec.params, combo))))
    return runs


def metrics_paths(name: str, runs_root: str | Path, profile: str, seeds: Iterable[int],
                  datasets: Sequence[str] | None = None,
                  values: Mapping[str, Sequence[Any]] | None = None,
                  canonical: Callable[[str, dict], dict] | None = None) -> list[Path]:
    """``<runs_root>/<profile>/<dataset>/<run_name>/seed<k>/metrics.json`` of every run of a table.

    ``canonical(dataset, overrides)`` drops overrides equal to the dataset's default (the profile
    knows them), so a sweep point that is the default run maps to that run; duplicates are removed.
    """
    seeds = sorted(set(int(s) for s in seeds))
    paths: list[Path] = []
    for r in table_runs(name, datasets, values):
        overrides = canonical(r.dataset, r.overrides) if canonical else r.overrides
        for s in seeds:
            path = Path(runs_root) / profile / r.dataset / run_name(r.method, overrides) / f"seed{s}" / "metrics.json"
            if path not in paths:
                paths.append(path)
    return paths


def setting_key(overrides: Mapping[str, Any]) -> str:
    """Text key of a run's overrides: ``"default"`` or ``"k1=v1;k2=v2"`` (sorted keys)."""
    if not overrides:
        return DEFAULT_SETTING
    return ";".join(f"{k}={format_value(_norm_value(overrides[k]))}" for k in sorted(overrides))


def parse_setting(setting: str) -> dict[str, float | str]:
    """Inverse of ``setting_key``."""
    if setting == DEFAULT_SETTING:
        return {}
    out: dict[str, float | str] = {}
    for part in setting.split(";"):
        key, sep, text = part.partition("=")
        if not sep:
            raise AEAError(f"setting {setting!r} is not 'default' or 'key=value;...'; fix the CSV")
        try:
            out[key] = float(text)
        except ValueError:
            out[key] = text
    return out


def _add_param_columns(df: pd.DataFrame, params: Sequence[str]) -> pd.DataFrame:
    parsed = [parse_setting(s) for s in df["setting"]]
    for p in params:
        df[p] = [d.get(p, math.nan) for d in parsed]
    return df


def _row_order(spec: TableSpec, method: str, dataset: str, setting: str, metric: str) -> tuple:
    method_pos = spec.methods.index(method) if method in spec.methods else len(spec.methods)
    ds_pos = DATASETS.index(dataset) if dataset in DATASETS else len(DATASETS)
    ov = parse_setting(setting)
    metric_pos = list(METRIC_FIELDS).index(metric) if metric in METRIC_FIELDS else len(METRIC_FIELDS)
    return (method_pos, method, ds_pos, dataset, tuple((k, _sort_value(ov[k])) for k in sorted(ov)),
            metric_pos, metric)


def table_metrics(spec: TableSpec) -> tuple[str, ...]:
    """Metrics a table reports: the paper's, plus ``mAP_noninterp`` beside ``mAP``."""
    return spec.metrics + (("mAP_noninterp",) if "mAP" in spec.metrics else ())


def paper_skeleton(name: str) -> pd.DataFrame:
    """Every cell of the paper's table ``name`` with the value unknown: the template of
    ``results/paper/<name>.csv`` (whose known cells are filled from PAPER.md)."""
    spec = get_spec(name)
    rows = [{"table": name, "method": r.method, "dataset": r.dataset, "setting": setting_key(r.overrides),
             "metric": metric, "value": math.nan,
             "source": f"paper {spec.paper_ref}: value not available to us (fill from the PDF)"}
            for r in table_runs(name) for metric in spec.metrics]
    df = pd.DataFrame(rows, columns=KEY_COLUMNS + PAPER_VALUE_COLUMNS)
    df = _add_param_columns(df, spec.params)
    return df[KEY_COLUMNS + list(spec.params) + PAPER_VALUE_COLUMNS]


# ---------------------------------------------------------------- our tables


def _field(m: Mapping[str, Any], key: str) -> Any:
    if key not in m:
        raise AEAError(f"metrics of run {m.get('run_name', '?')} (seed {m.get('seed', '?')}) lack {key!r}; "
                       f"re-run its evaluation")
    return m[key]


def load_metrics(paths: Iterable[str | Path]) -> list[dict[str, Any]]:
    """Read runs' metrics.json files; a missing or unreadable one is a user error."""
    out = []
    for p in paths:
        try:
            out.append(read_json(p))
        except FileNotFoundError:
            raise AEAError(f"run metrics {p} missing; train and evaluate that run first") from None
        except (OSError, json.JSONDecodeError) as exc:
            raise AEAError(f"run metrics {p} unreadable ({exc}); re-run its evaluation") from None
    return out


def build_table(name: str, metrics: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Table ``name`` from runs' metrics.json dicts: statistics over seeds per cell.

    Every run must belong to the table (its method, and overrides only of the
    table's swept parameters) and all runs must share one profile.
    """
    spec = get_spec(name)
    if not metrics:
        raise AEAError(f"no runs given for {name}; run its workflow target first")
    profiles = sorted({str(_field(m, "profile")) for m in metrics})
    if len(profiles) > 1:
        raise AEAError(f"{name} mixes runs of profiles {', '.join(profiles)}; build it from one profile's runs")
    groups: dict[tuple[str, str, str], list[Mapping[str, Any]]] = {}
    for m in metrics:
        method, dataset = str(_field(m, "method")), str(_field(m, "dataset"))
        overrides = dict(m.get("overrides") or {})
        if method not in spec.methods or not set(overrides) <= set(spec.params):
            raise AEAError(f"run {m.get('run_name', method)} ({method}, overrides {sorted(overrides)}) is not part "
                           f"of {name} (methods {', '.join(spec.methods)}, sweeping "
                           f"{', '.join(spec.params) or 'nothing'}); pass only that table's runs")
        if dataset not in DATASETS:
            raise AEAError(f"run {m.get('run_name', method)} has unknown dataset {dataset!r}")
        # A swept value equal to the dataset default is not an override (canonical run names), so the
        # cell is keyed on the resolved config, e.g. the default AEA run is the R = 10 point on Market.
        swept = {p: _field(m, "config")[p] for p in spec.params}
        groups.setdefault((method, dataset, setting_key(swept)), []).append(m)

    rows = []
    for (method, dataset, setting), runs in groups.items():
        seeds = [int(_field(r, "seed")) for r in runs]
        if len(set(seeds)) != len(seeds):
            raise AEAError(f"{name}: {method} on {dataset} ({setting}) has seed(s) given twice; "
                           f"pass each run once")
        order = np.argsort(seeds, kind="stable")
        runs = [runs[i] for i in order]
        seeds = sorted(seeds)
        names = sorted({str(r.get("run_name", "")) for r in runs})
        for metric in table_metrics(spec):
            vals = np.array([100.0 * float(_field(r, METRIC_FIELDS[metric])) for r in runs])
            rows.append({
                "table": name, "method": method, "dataset": dataset, "setting": setting, "metric": metric,
                "profile": profiles[0], "run_name": ";".join(names), "n_seeds": len(vals),
                "seeds": ";".join(str(s) for s in seeds), "mean": float(vals.mean()),
                "std": float(vals.std(ddof=1)) if len(vals) > 1 else math.nan,
                "min": float(vals.min()), "max": float(vals.max()),
            })
    rows.sort(key=lambda r: _row_order(spec, r["method"], r["dataset"], r["setting"], r["metric"]))
    df = pd.DataFrame(rows, columns=KEY_COLUMNS + STAT_COLUMNS)
    df = _add_param_columns(df, spec.params)
    return df[KEY_COLUMNS + list(spec.params) + STAT_COLUMNS]


def collect_provenance(name: str, metrics: Sequence[Mapping[str, Any]],
                       paths: Sequence[str | Path] | None = None) -> dict[str, Any]:
    """Where a table's numbers come from: per run commit, config hash, seed, device, wall times."""
    runs = []
    for i, m in enumerate(metrics):
        run = {k: m.get(k) for k in ("dataset", "method", "run_name", "seed", "overrides", "config_hash",
                                     "git_commit", "device", "train_seconds", "eval_seconds")}
        if paths is not None:
            run["metrics_path"] = str(paths[i])
        runs.append(run)
    runs.sort(key=lambda r: (str(r["dataset"]), str(r["run_name"]), int(r["seed"] or 0)))

    def uniq(key: str) -> list[Any]:
        return sorted({r[key] for r in runs if r[key] is not None}, key=str)

    commits = uniq("git_commit")
    if len(commits) > 1:
        log.warning("%s combines runs from %d git commits: %s", name, len(commits), ", ".join(commits))
    return {
        "table": name,
        "profile": sorted({str(m.get("profile")) for m in metrics}),
        "n_runs": len(runs),
        "seeds": uniq("seed"),
        "git_commits": commits,
        "devices": uniq("device"),
        "config_hashes": uniq("config_hash"),
        "total_train_seconds": float(sum(r["train_seconds"] or 0.0 for r in runs)),
        "total_eval_seconds": float(sum(r["eval_seconds"] or 0.0 for r in runs)),
        "runs": runs,
    }


def provenance_path(out_csv: str | Path) -> Path:
    out_csv = Path(out_csv)
    return out_csv.with_name(out_csv.stem + ".provenance.json")


def _write_csv(df: pd.DataFrame, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)


def write_table(df: pd.DataFrame, out_csv: str | Path, provenance: Mapping[str, Any]) -> None:
    """``out_csv`` plus its ``<name>.provenance.json`` sidecar, both atomically."""
    _write_csv(df, out_csv)
    write_json(provenance_path(out_csv), dict(provenance))


def read_table(path: str | Path) -> pd.DataFrame:
    """A table CSV written by ``write_table``/``write_diff`` (key columns kept as text)."""
    return pd.read_csv(path, dtype={c: str for c in KEY_COLUMNS + ["seeds", "run_name", "profile"]},
                       keep_default_na=False, na_values={c: [""] for c in ("mean", "std", "min", "max", "paper",
                                                                          "ours", "delta", "value")})


# ---------------------------------------------------------------- paper references


def _read_reference(path: Path, columns: Sequence[str]) -> pd.DataFrame:
    try:
        with open(path, newline="") as f:
            rows = [row for row in csv.reader(f) if row]
    except FileNotFoundError:
        raise AEAError(f"paper reference {path} missing; restore it from git (results/paper/)") from None
    if not rows:
        raise AEAError(f"{path} is empty; restore it from git (results/paper/)")
    for i, row in enumerate(rows[1:], start=2):
        if len(row) != len(rows[0]):
            raise AEAError(f"{path} row {i} has {len(row)} fields, the header {len(rows[0])}; "
                           f"quote fields that contain commas")
    df = pd.DataFrame(rows[1:], columns=rows[0], dtype=str)
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise AEAError(f"{path} lacks column(s) {', '.join(missing)}; keep the header of results/paper/ CSVs")
    text = df["value"].str.strip()
    values = pd.to_numeric(text.where(text != "", None), errors="coerce")
    bad = text[(text != "") & values.isna()]
    if len(bad):
        raise AEAError(f"{path}: value {bad.iloc[0]!r} (row {bad.index[0] + 2}) is not a number; "
                       f"write percent with a dot, or leave it empty when unknown")
    df["value"] = values.astype(float)
    dup = df.duplicated(KEY_COLUMNS)
    if dup.any():
        row = df[dup].iloc[0]
        raise AEAError(f"{path} lists {', '.join(str(row[c]) for c in KEY_COLUMNS)} twice; keep one row")
    return df


def read_paper(paper_dir: str | Path, name: str) -> pd.DataFrame:
    """The paper's values for table ``name`` (``value`` NaN where unknown)."""
    spec = get_spec(name)
    df = _read_reference(Path(paper_dir) / f"{name}.csv", KEY_COLUMNS + PAPER_VALUE_COLUMNS)
    df = df[df["table"] == name].reset_index(drop=True)
    df = _add_param_columns(df, spec.params)
    return df[KEY_COLUMNS + list(spec.params) + PAPER_VALUE_COLUMNS]


def read_peers(paper_dir: str | Path, name: str) -> pd.DataFrame:
    """Peers' published numbers shown as context for table ``name`` (never used as paper values)."""
    path = Path(paper_dir) / "peers.csv"
    if not path.is_file():
        return pd.DataFrame(columns=PEER_COLUMNS)
    df = _read_reference(path, PEER_COLUMNS)
    return df[df["table"] == name].reset_index(drop=True)[PEER_COLUMNS]


# ---------------------------------------------------------------- claims


@dataclass(frozen=True)
class Claim:
    """A statement the paper makes in words, checked on our table: ``check(table) -> (status, detail)``."""

    table: str
    text: str
    check: Callable[[pd.DataFrame], tuple[str, str]]


def _means(table: pd.DataFrame) -> dict[tuple[str, str, str, str], float]:
    return {(r.method, r.dataset, r.setting, r.metric): float(r.mean)
            for r in table[["method", "dataset", "setting", "metric", "mean"]].itertuples(index=False)}


def _verdict(failures: list[str], missing: list[str], checked: int, note: str = "") -> tuple[str, str]:
    """A universal claim fails on any counterexample, holds only when every cell it needs exists."""
    if failures:
        return FAILS, "; ".join(failures) + note
    if missing:
        return NOT_EVALUABLE, "missing runs: " + ", ".join(dict.fromkeys(missing)) + note
    return HOLDS, f"all {checked} comparisons hold" + note


def _beats(winner: str, losers: Sequence[str], datasets: Sequence[str], metrics: Sequence[str]
           ) -> Callable[[pd.DataFrame], tuple[str, str]]:
    """``winner``'s mean strictly above every loser's, per dataset and metric (all cells needed)."""
    def check(table: pd.DataFrame) -> tuple[str, str]:
        means, failures, missing, checked = _means(table), [], [], 0
        for ds, metric in itertools.product(datasets, metrics):
            w = means.get((winner, ds, DEFAULT_SETTING, metric))
            if w is None:
                missing.append(f"{winner} {ds} {metric}")
            for loser in losers:
                v = means.get((loser, ds, DEFAULT_SETTING, metric))
                if v is None:
                    missing.append(f"{loser} {ds} {metric}")
                elif w is not None:
                    checked += 1
                    if not w > v:
                        failures.append(f"{ds} {metric}: {winner} {w:.1f} <= {loser} {v:.1f}")
        return _verdict(failures, missing, checked)
    return check


def _best(name: str, best: Mapping[str, Any], datasets: Sequence[str], metrics: Sequence[str]
          ) -> Callable[[pd.DataFrame], tuple[str, str]]:
    """AEA with ``best`` at least as good as every other setting run (ties count as best).

    Compared: the settings present in the table (profiles sweep fewer values than
    the paper; the paper's exact grids for Figs. 6/7 are not even known).  Needed:
    the ``best`` cell and one other per dataset and metric.  Registry values that
    were not run are named in the detail.
    """
    best_key = setting_key(best)

    def check(table: pd.DataFrame) -> tuple[str, str]:
        means, failures, missing, checked, not_run = _means(table), [], [], 0, []
        for ds, metric in itertools.product(datasets, metrics):
            present = [k[2] for k in means if k[0] == "aea" and k[1] == ds and k[3] == metric]
            not_run += [f"{ds} {s}" for s in (setting_key(r.overrides) for r in table_runs(name, [ds]))
                        if s not in present]
            b = means.get(("aea", ds, best_key, metric))
            others = [s for s in present if s != best_key]
            if b is None or not others:
                missing.append(f"{ds} {best_key if b is None else 'another setting'} {metric}")
                continue
            for other in others:
                checked += 1
                if means[("aea", ds, other, metric)] > b:
                    failures.append(f"{ds} {metric}: {other} {means[('aea', ds, other, metric)]:.1f} > "
                                    f"{best_key} {b:.1f}")
        note = f" (paper grid not fully run; missing: {', '.join(dict.fromkeys(not_run))})" if not_run else ""
        return _verdict(failures, missing, checked, note)
    return check


_RM = ("rank1", "mAP")
_BASELINES = ("baseline1", "baseline2", "baseline3", "baseline4")
CLAIMS: dict[str, list[Claim]] = {
    "table2": [
        Claim("table2", "AEA beats Baselines 1-4 on every dataset, in rank-1 and in mAP",
              _beats("aea", _BASELINES, DATASETS, _RM)),
        Claim("table2", "Baseline 1 beats Baseline 2 on every dataset, in rank-1 and in mAP",
              _beats("baseline1", ("baseline2",), DATASETS, _RM)),
        Claim("table2", "Baseline 4 beats Baseline 3 on every dataset, in rank-1 and in mAP",
              _beats("baseline4", ("baseline3",), DATASETS, _RM)),
    ],
    "table6": [
        Claim("table6", "AEA beats REDA and AOS on every dataset, in rank-1 and in mAP",
              _beats("aea", ("reda", "aos"), DATASETS, _RM)),
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


def evaluate_claims(table: pd.DataFrame, claims: Sequence[Claim]) -> pd.DataFrame:
    rows = []
    for c in claims:
        status, detail = c.check(table)
        rows.append({"table": c.table, "claim": c.text, "status": status, "detail": detail})
    return pd.DataFrame(rows, columns=["table", "claim", "status", "detail"])


# ---------------------------------------------------------------- diff


def _within(paper: float, ours: Mapping[str, Any] | None) -> str:
    """Paper value inside our seeds' min..max (widened by the paper's rounding)?"""
    if math.isnan(paper):
        return "paper value unknown"
    if ours is None:
        return "n/a (run missing)"
    if ours["n_seeds"] < 2:
        return "n/a (1 seed)"
    return "yes" if ours["min"] - PAPER_ROUNDING <= paper <= ours["max"] + PAPER_ROUNDING else "no"


def diff_table(ours: pd.DataFrame, paper: pd.DataFrame, claims: Sequence[Claim]
               ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Cell-by-cell comparison with the paper, plus the paper's claims checked on ``ours``.

    Rows: every paper cell (in the paper CSV's order), then our cells of the same
    metrics the paper CSV does not list.  ``delta`` = ours - paper (percentage
    points); NaN where either side is unknown.
    """
    name = str(ours["table"].iloc[0]) if len(ours) else (str(paper["table"].iloc[0]) if len(paper) else "")
    params = list(get_spec(name).params) if name else []
    profile = str(ours["profile"].iloc[0]) if len(ours) else ""
    ours_cells = {tuple(r[c] for c in KEY_COLUMNS): r for r in ours.to_dict("records")}
    paper_metrics = set(paper["metric"])
    rows = []

    def add(key: tuple, paper_value: float, source: str) -> None:
        o = ours_cells.get(key)
        mean = o["mean"] if o is not None else math.nan
        rows.append({
            **dict(zip(KEY_COLUMNS, key)), "profile": profile, "paper": paper_value, "source": source,
            "ours": mean, "std": o["std"] if o is not None else math.nan,
            "min": o["min"] if o is not None else math.nan, "max": o["max"] if o is not None else math.nan,
            "n_seeds": int(o["n_seeds"]) if o is not None else 0, "seeds": o["seeds"] if o is not None else "",
            "delta": mean - paper_value, "within_spread": _within(paper_value, o),
        })

    paper_keys = set()
    for r in paper.to_dict("records"):
        key = tuple(r[c] for c in KEY_COLUMNS)
        paper_keys.add(key)
        add(key, float(r["value"]), str(r["source"]))
    for key in ours_cells:
        if key not in paper_keys and key[KEY_COLUMNS.index("metric")] in paper_metrics:
            add(key, math.nan, "not in the paper reference CSV")
    diff = pd.DataFrame(rows, columns=KEY_COLUMNS + DIFF_VALUE_COLUMNS)
    diff = _add_param_columns(diff, params)
    return diff[KEY_COLUMNS + params + DIFF_VALUE_COLUMNS], evaluate_claims(ours, claims)


def _fmt(x: float, digits: int = 1, signed: bool = False) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    return f"{x:+.{digits}f}" if signed else f"{x:.{digits}f}"


def _markdown_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"
    return "\n".join([line(header), line(["---"] * len(header))] + [line(r) for r in rows])


def _ours_text(r: Mapping[str, Any]) -> str:
    if math.isnan(r["ours"]):
        return "run missing"
    spread = f" ± {r['std']:.1f}" if not math.isnan(r["std"]) else ""
    return f"{r['ours']:.1f}{spread} (n={int(r['n_seeds'])})"


def diff_markdown(diff: pd.DataFrame, claims: pd.DataFrame, context: pd.DataFrame | None = None) -> str:
    """The readable report: header (profile, seeds, caveats), the cells, the claims, peers' context."""
    name = str(diff["table"].iloc[0]) if len(diff) else (str(claims["table"].iloc[0]) if len(claims) else "?")
    profiles = sorted({p for p in diff["profile"] if p})
    seeds = sorted({int(s) for cell in diff["seeds"] for s in str(cell).split(";") if s != ""})
    profile = ", ".join(profiles) or "(no runs)"
    lines = [f"# {name}: our runs vs. the AEA paper ({get_spec(name).paper_ref})", ""]
    lines.append(f"- Profile: `{profile}`; seeds: {', '.join(map(str, seeds)) or 'none'}.")
    if profiles != ["paper"]:
        lines.append(f"- **The `{profile}` profile is not expected to match the paper's numbers** (generated "
                     "or reduced data, small model, few epochs): it checks the pipeline, not the paper.")
    lines += [
        "- ours = mean over seeds ± sample std (n = seeds); values in %, rounded here, full precision in the CSV.",
        "- delta = ours - paper; 'within seeds' = the paper value lies in our seeds' min..max "
        f"(± {PAPER_ROUNDING} for the paper's rounding to one decimal).",
        "- 'paper value unknown' = the paper's number is not available to us; fill it in results/paper/ "
        "and rebuild. No value is ever guessed.",
        "",
        "## Cells",
        "",
    ]
    body = []
    for r in diff.to_dict("records"):
        paper = "paper value unknown" if math.isnan(r["paper"]) else _fmt(r["paper"])
        body.append([METHOD_LABELS.get(r["method"], r["method"]), DATASET_LABELS.get(r["dataset"], r["dataset"]),
                     r["setting"], r["metric"], paper, _ours_text(r), _fmt(r["delta"], signed=True),
                     r["within_spread"]])
    lines.append(_markdown_table(["method", "dataset", "setting", "metric", "paper", "ours", "delta",
                                  "within seeds"], body))
    lines += ["", "## Claims stated in the paper", ""]
    for c in claims.to_dict("records"):
        lines.append(f"- **{c['status']}**: {c['claim']} ({c['detail']})")
    if context is not None and len(context):
        lines += ["", "## Context: peers' published numbers",
                  "", "Not from the AEA paper and not used in the comparison above (other papers, "
                  "other training recipes).", ""]
        lines.append(_markdown_table(
            ["method", "dataset", "metric", "value", "description", "source"],
            [[METHOD_LABELS.get(r["method"], r["method"]), DATASET_LABELS.get(r["dataset"], r["dataset"]),
              r["metric"], _fmt(r["value"], 2), r["description"], r["source"]]
             for r in context.to_dict("records")]))
    return "\n".join(lines) + "\n"


def write_diff(diff: pd.DataFrame, claims: pd.DataFrame, out_csv: str | Path, out_md: str | Path,
               context: pd.DataFrame | None = None) -> None:
    """``<table>.diff.csv`` (the cells) and ``<table>.diff.md`` (cells, claims, peers' context)."""
    _write_csv(diff, out_csv)
    write_text(out_md, diff_markdown(diff, claims, context))


# ---------------------------------------------------------------- entry point


def make_table(name: str, metrics_paths: Sequence[str | Path], out_dir: str | Path, paper_dir: str | Path) -> None:
    """Everything for one table: ``<name>.csv`` + provenance, diff csv/md, and the PNG of a figure."""
    spec = get_spec(name)
    out_dir = Path(out_dir)
    metrics = load_metrics(metrics_paths)
    table = build_table(name, metrics)
    write_table(table, out_dir / f"{name}.csv", collect_provenance(name, metrics, list(metrics_paths)))
    compare_table(name, out_dir, paper_dir)
    log.info("%s: %d cells from %d runs -> %s", name, len(table), len(metrics), out_dir)


def compare_table(name: str, out_dir: str | Path, paper_dir: str | Path) -> pd.DataFrame:
    """Diff the written ``<out_dir>/<name>.csv`` against the paper CSV (again, e.g. after filling paper cells).

    Writes the diff csv/md (and the figure PNG, which shows the paper's points) and returns the claims.
    """
    spec = get_spec(name)
    out_dir = Path(out_dir)
    table_csv = out_dir / f"{name}.csv"
    if not table_csv.is_file():
        raise AEAError(f"{table_csv} not found; build it first with `snakemake --cores all {table_csv}`")
    table = read_table(table_csv)
    paper = read_paper(paper_dir, name)
    diff, claims = diff_table(table, paper, CLAIMS[name])
    write_diff(diff, claims, out_dir / f"{name}.diff.csv", out_dir / f"{name}.diff.md", read_peers(paper_dir, name))
    if spec.figure_param:
        plot_sweep(table, spec.figure_param, out_dir / f"{name}.png", paper=paper, labels=DATASET_LABELS)
    return claims
