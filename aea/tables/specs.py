"""The table registry: which runs make each paper table, and the text keys of their settings.

``TABLES`` says which runs make each table; ``table_runs`` turns it into the
(dataset, method, overrides) list the workflow trains.  A cell's ``setting`` is
the run's swept overrides as text (``"default"``, ``"erase_ratio=20"``,
``"alpha1=0.5;alpha2=1.5"``), so a cell of ours and a cell of the paper's
reference CSV share one key.  Tables 7/8 (the alpha1 x alpha2 study, bodies
unavailable) are defined as table7 = rank-1 grid, table8 = mAP grid.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from aea.config import format_value, run_name
from aea.data.families import family_of
from aea.errors import AEAError
from aea.methods import REGISTRY
from aea.names import DATASETS, LAYERS
from aea.runs import METRICS_FILE, profile_runs, run_path

METHOD_LABELS = {name: method.title for name, method in REGISTRY.items()}
# table metric -> metrics.json field (fractions there, percent here)
METRIC_FIELDS = {"rank1": "rank1", "mAP": "map_official", "mAP_noninterp": "map_noninterp"}
CUHK03 = tuple(s.name for s in family_of("cuhk03").settings)  # the paper's claims name its two settings
DEFAULT_SETTING = "default"
KEY_COLUMNS = ["table", "method", "dataset", "setting", "metric"]


@dataclass(frozen=True)
class TableSpec:
    """What one paper table or figure is made of.

    Runs are every method x dataset x the cartesian product of ``values`` over
    ``params`` (no params: one default run per method and dataset);
    ``extra_values`` adds per-dataset values (Fig. 7's m = 0.35 on CUHK03).
    ``controls`` are methods the paper does not have, run beside ``methods`` and shown as extra rows marked
    "not in the paper" (the reference CSV never lists them).
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
    controls: tuple[str, ...] = ()

    @property
    def all_methods(self) -> tuple[str, ...]:
        """The paper's methods, then the harness's controls: every method the table runs."""
        return self.methods + self.controls


_ALPHAS = (0.1, 0.5, 1.0, 1.5, 2.0)
TABLES: dict[str, TableSpec] = {
    spec.name: spec
    for spec in (
        # the control "two networks, no erasing" (issue 23): is AEA's gain over Baseline 1 the erasing or the
        # second network? Its basic network is Baseline 1's (share_basic), as Baselines 3/4 share it.
        TableSpec("table2", "Table 2", ("aea", "baseline1", "baseline2", "baseline3", "baseline4"),
                  DATASETS, ("rank1", "mAP"), controls=("noerase",)),
        TableSpec("table6", "Table 6", ("reda", "aos", "aea"), DATASETS, ("rank1", "mAP"), controls=("noerase",)),
        # Tables 7/8 are the alpha1 x alpha2 study; their bodies are unavailable, so we define
        # table7 = the rank-1 grid and table8 = the mAP grid (same runs).
        TableSpec("table7", "Table 7", ("aea",), ("market1501",), ("rank1",),
                  ("alpha1", "alpha2"), {"alpha1": _ALPHAS, "alpha2": _ALPHAS}),
        TableSpec("table8", "Table 8", ("aea",), ("market1501",), ("mAP",),
                  ("alpha1", "alpha2"), {"alpha1": _ALPHAS, "alpha2": _ALPHAS}),
        TableSpec("table9", "Table 9", ("aea",), ("market1501",), ("rank1", "mAP"),
                  ("erase_layer",), {"erase_layer": LAYERS}),
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


def get_spec(name: str) -> TableSpec:
    if name not in TABLES:
        raise AEAError(f"unknown table {name!r}; choose one of {', '.join(TABLES)}")
    return TABLES[name]


def norm_value(value: Any) -> float | str:
    """Override values as the run configs hold them: numbers as float, layer names as str."""
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return float(value)
    return str(value)


def sort_value(value: Any) -> tuple[int, float, str]:
    value = norm_value(value)
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
        chosen = [norm_value(v) for v in given]
        chosen += [norm_value(v) for v in spec.extra_values.get(dataset, {}).get(p, ())]
        out[p] = sorted(set(chosen), key=sort_value)
    return out


def table_runs(name: str, datasets: Sequence[str] | None = None,
               values: Mapping[str, Sequence[Any]] | None = None, *, controls: bool = True) -> list[RunSpec]:
    """The runs table ``name`` needs, in table order.

    ``datasets`` defaults to the table's (all four, Market-1501 only for the
    alpha and layer studies); ``values`` replaces the swept values per parameter;
    ``controls=False`` leaves out the harness's controls (the paper's cells only).
    """
    spec = get_spec(name)
    datasets = spec.datasets if datasets is None else tuple(datasets)
    for ds in datasets:
        if ds not in DATASETS:
            raise AEAError(f"unknown dataset {ds!r} for {name}; choose from {', '.join(DATASETS)}")
    runs = []
    for ds in datasets:
        grid = param_values(name, ds, values)
        for method in spec.all_methods if controls else spec.methods:
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
    return runs_metrics_paths(table_runs(name, datasets, values), runs_root, profile, seeds, canonical)


def runs_metrics_paths(runs: Iterable[RunSpec], runs_root: str | Path, profile: str, seeds: Iterable[int],
                       canonical: Callable[[str, dict], dict] | None = None) -> list[Path]:
    """metrics.json paths of ``runs`` x ``seeds`` (canonical run names, duplicates removed, order kept)."""
    seeds = sorted(set(int(s) for s in seeds))
    paths: list[Path] = []
    for r in runs:
        overrides = canonical(r.dataset, r.overrides) if canonical else r.overrides
        for s in seeds:
            path = Path(run_path(profile_runs(profile, str(runs_root)), r.dataset, run_name(r.method, overrides), s),
                        METRICS_FILE)
            if path not in paths:
                paths.append(path)
    return paths


def setting_key(overrides: Mapping[str, Any]) -> str:
    """Text key of a run's overrides: ``"default"`` or ``"k1=v1;k2=v2"`` (sorted keys)."""
    if not overrides:
        return DEFAULT_SETTING
    return ";".join(f"{k}={format_value(norm_value(overrides[k]))}" for k in sorted(overrides))


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


def add_param_columns(df: pd.DataFrame, params: Sequence[str]) -> pd.DataFrame:
    parsed = [parse_setting(s) for s in df["setting"]]
    for p in params:
        df[p] = [d.get(p, math.nan) for d in parsed]
    return df


def row_order(spec: TableSpec, method: str, dataset: str, setting: str, metric: str) -> tuple:
    methods = spec.all_methods
    method_pos = methods.index(method) if method in methods else len(methods)
    ds_pos = DATASETS.index(dataset) if dataset in DATASETS else len(DATASETS)
    ov = parse_setting(setting)
    metric_pos = list(METRIC_FIELDS).index(metric) if metric in METRIC_FIELDS else len(METRIC_FIELDS)
    return (method_pos, method, ds_pos, dataset, tuple((k, sort_value(ov[k])) for k in sorted(ov)),
            metric_pos, metric)


def table_metrics(spec: TableSpec) -> tuple[str, ...]:
    """Metrics a table reports: the paper's, plus ``mAP_noninterp`` beside ``mAP``."""
    return spec.metrics + (("mAP_noninterp",) if "mAP" in spec.metrics else ())
