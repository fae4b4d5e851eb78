"""Runs' metrics.json -> one table: statistics over seeds per cell, provenance, CSV in and out.

A table is a tidy DataFrame, one row per (method, dataset, setting, metric) cell:
key columns ``table, method, dataset, setting, metric``; one column per swept
parameter (the parsed value, for filtering and plotting); statistics over seeds
in percent at full precision (rounding happens only in the markdown report):
``mean``, ``std`` (sample std, ddof=1; NaN with one seed, because one sample has
no spread and 0 would claim a certainty we do not have), ``min``, ``max``,
``n_seeds``, ``seeds``.  ``mAP`` is the official Market-1501 (trapezoid) AP;
``mAP_noninterp`` (torchreid-style) is reported beside it because the paper does
not say which one it printed.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aea.errors import AEAError
from aea.io import atomic_path, read_json, write_json
from aea.names import DATASETS
from aea.tables.specs import (
    KEY_COLUMNS,
    METRIC_FIELDS,
    add_param_columns,
    get_spec,
    row_order,
    setting_key,
    table_metrics,
)

log = logging.getLogger(__name__)

STAT_COLUMNS = ["profile", "run_name", "n_seeds", "seeds", "mean", "std", "min", "max"]
Cell = tuple[str, str, str]  # (method, dataset, setting)


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


def group_runs(name: str, metrics: Sequence[Mapping[str, Any]]) -> dict[Cell, list[Mapping[str, Any]]]:
    """Runs of table ``name`` by cell (method, dataset, setting), each cell's runs sorted by seed.

    Every run must belong to the table (its method, and overrides only of the
    table's swept parameters), all runs must share one profile, and a cell may
    hold each seed once.
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
        if method not in spec.all_methods or not set(overrides) <= set(spec.params):
            raise AEAError(f"run {m.get('run_name', method)} ({method}, overrides {sorted(overrides)}) is not part "
                           f"of {name} (methods {', '.join(spec.all_methods)}, sweeping "
                           f"{', '.join(spec.params) or 'nothing'}); pass only that table's runs")
        if dataset not in DATASETS:
            raise AEAError(f"run {m.get('run_name', method)} has unknown dataset {dataset!r}")
        # A swept value equal to the dataset default is not an override (canonical run names), so the
        # cell is keyed on the resolved config, e.g. the default AEA run is the R = 10 point on Market.
        swept = {p: _field(m, "config")[p] for p in spec.params}
        groups.setdefault((method, dataset, setting_key(swept)), []).append(m)

    for cell, runs in groups.items():
        seeds = [int(_field(r, "seed")) for r in runs]
        if len(set(seeds)) != len(seeds):
            raise AEAError(f"{name}: {cell[0]} on {cell[1]} ({cell[2]}) has seed(s) given twice; pass each run once")
        groups[cell] = [runs[i] for i in np.argsort(seeds, kind="stable")]
    return groups


def build_table(name: str, metrics: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Table ``name`` from runs' metrics.json dicts: statistics over seeds per cell (see ``group_runs``)."""
    spec = get_spec(name)
    groups = group_runs(name, metrics)
    profile = str(_field(metrics[0], "profile"))
    rows = []
    for (method, dataset, setting), runs in groups.items():
        seeds = [int(_field(r, "seed")) for r in runs]
        names = sorted({str(r.get("run_name", "")) for r in runs})
        for metric in table_metrics(spec):
            vals = np.array([100.0 * float(_field(r, METRIC_FIELDS[metric])) for r in runs])
            rows.append({
                "table": name, "method": method, "dataset": dataset, "setting": setting, "metric": metric,
                "profile": profile, "run_name": ";".join(names), "n_seeds": len(vals),
                "seeds": ";".join(str(s) for s in seeds), "mean": float(vals.mean()),
                "std": float(vals.std(ddof=1)) if len(vals) > 1 else math.nan,
                "min": float(vals.min()), "max": float(vals.max()),
            })
    rows.sort(key=lambda r: row_order(spec, r["method"], r["dataset"], r["setting"], r["metric"]))
    df = pd.DataFrame(rows, columns=KEY_COLUMNS + STAT_COLUMNS)
    df = add_param_columns(df, spec.params)
    return df[KEY_COLUMNS + list(spec.params) + STAT_COLUMNS]


def collect_provenance(name: str, metrics: Sequence[Mapping[str, Any]],
                       paths: Sequence[str | Path] | None = None) -> dict[str, Any]:
    """Where a table's numbers come from: per run commit, config hash, seed, device, wall times."""
    runs = []
    for i, m in enumerate(metrics):
        run = {k: m.get(k) for k in ("dataset", "method", "run_name", "seed", "overrides", "config_hash",
                                     "git_commit", "device", "machine", "train_seconds", "eval_seconds")}
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
        "machines": [dict(t) for t in sorted({tuple(sorted(r["machine"].items())) for r in runs if r["machine"]})],
        "config_hashes": uniq("config_hash"),
        "total_train_seconds": float(sum(r["train_seconds"] or 0.0 for r in runs)),
        "total_eval_seconds": float(sum(r["eval_seconds"] or 0.0 for r in runs)),
        "runs": runs,
    }


def provenance_path(out_csv: str | Path) -> Path:
    out_csv = Path(out_csv)
    return out_csv.with_name(out_csv.stem + ".provenance.json")


def write_csv(df: pd.DataFrame, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)


def write_table(df: pd.DataFrame, out_csv: str | Path, provenance: Mapping[str, Any]) -> None:
    """``out_csv`` plus its ``<name>.provenance.json`` sidecar, both atomically."""
    write_csv(df, out_csv)
    write_json(provenance_path(out_csv), dict(provenance))


NUMERIC_COLUMNS = ("mean", "std", "min", "max", "paper", "ours", "delta", "value", "n_seeds")


def read_table(path: str | Path) -> pd.DataFrame:
    """A table CSV written by ``write_table``/``write_diff`` (key columns kept as text, numbers checked)."""
    try:
        df = pd.read_csv(path, dtype={c: str for c in KEY_COLUMNS + ["seeds", "run_name", "profile"]},
                         keep_default_na=False, na_values={c: [""] for c in NUMERIC_COLUMNS})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise AEAError(f"{path} is not a table CSV ({type(exc).__name__}); rebuild it with its workflow target") \
            from None
    for column in (c for c in NUMERIC_COLUMNS if c in df.columns):
        values = pd.to_numeric(df[column], errors="coerce")
        bad = df[column][values.isna() & df[column].notna()]
        if len(bad):
            raise AEAError(f"{path} row {bad.index[0] + 2}: {column} {bad.iloc[0]!r} is not a number; rebuild the "
                           "table with its workflow target (or fix the cell)")
        df[column] = values
    return df


