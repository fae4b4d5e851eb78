"""The paper's reference values (``results/paper/<table>.csv``) and peers' published numbers.

Only the numbers printed in the paper's text are filled in; every other cell of
a table is present with an empty value and a ``source`` saying so, and is never
guessed.  A user with the PDF fills cells and the diff picks them up; a row that
names a method, dataset, setting or metric the table does not have is refused
(a misspelt ``Baseline1`` or ``map`` would otherwise never be compared).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from aea.errors import AEAError
from aea.io import write_text
from aea.tables.specs import (
    KEY_COLUMNS,
    add_param_columns,
    get_spec,
    setting_key,
    table_metrics,
    table_runs,
)

PAPER_VALUE_COLUMNS = ["value", "source"]
PEER_COLUMNS = KEY_COLUMNS + ["value", "source", "description"]
PAPER_TEXT_SOURCE = "paper text (abstract/experiments)"


def paper_skeleton(name: str) -> pd.DataFrame:
    """Every cell of the paper's table ``name`` with the value unknown: the template of
    ``results/paper/<name>.csv`` (whose known cells are filled from the paper; see docs/paper.md)."""
    spec = get_spec(name)
    rows = [{"table": name, "method": r.method, "dataset": r.dataset, "setting": setting_key(r.overrides),
             "metric": metric, "value": math.nan,
             "source": f"paper {spec.paper_ref}: value not available to us (fill from the PDF)"}
            for r in table_runs(name, controls=False) for metric in spec.metrics]
    df = pd.DataFrame(rows, columns=KEY_COLUMNS + PAPER_VALUE_COLUMNS)
    df = add_param_columns(df, spec.params)
    return df[KEY_COLUMNS + list(spec.params) + PAPER_VALUE_COLUMNS]


def write_paper_template(name: str, paper_dir: str | Path) -> Path:
    """Write ``<paper_dir>/<name>.csv``, every cell of table ``name`` with its value unknown (``paper_skeleton``),
    for a table added to ``aea.tables.specs.TABLES``; an existing reference is never overwritten."""
    path = Path(paper_dir) / f"{name}.csv"
    if path.exists():
        raise AEAError(f"{path} exists; fill its empty values from the paper instead of writing a template over it")
    skeleton = paper_skeleton(name)
    write_text(path, skeleton.to_csv(index=False, lineterminator="\n"))
    return path


def _read_reference(path: Path, columns: Sequence[str]) -> pd.DataFrame:
    try:
        with open(path, newline="") as f:
            rows = [row for row in csv.reader(f) if row]
    except FileNotFoundError:
        raise AEAError(f"paper reference {path} missing; restore it from git (results/paper/), or for a table you "
                       f"added write its template with `aea paper-template {path.stem} --paper-dir {path.parent}`"
                       ) from None
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
    _check_known(df, name, Path(paper_dir) / f"{name}.csv")
    df = add_param_columns(df, spec.params)
    return df[KEY_COLUMNS + list(spec.params) + PAPER_VALUE_COLUMNS]


def read_peers(paper_dir: str | Path, name: str) -> pd.DataFrame:
    """Peers' published numbers shown as context for table ``name`` (never used as paper values)."""
    path = Path(paper_dir) / "peers.csv"
    if not path.is_file():
        return pd.DataFrame(columns=PEER_COLUMNS)
    df = _read_reference(path, PEER_COLUMNS)
    return df[df["table"] == name].reset_index(drop=True)[PEER_COLUMNS]


def _check_known(df: pd.DataFrame, name: str, path: Path) -> None:
    """Every row names a method, dataset, setting and metric of table ``name``: the fix is in the message."""
    spec = get_spec(name)
    known = {
        "table": (name,),
        "method": spec.methods,
        "dataset": spec.datasets,
        "metric": tuple(dict.fromkeys(spec.metrics + table_metrics(spec))),
    }
    for column, choices in known.items():
        bad = df[~df[column].isin(choices)]
        if len(bad):
            raise AEAError(f"{path} row {bad.index[0] + 2}: {column} {bad[column].iloc[0]!r} is not one of "
                           f"{', '.join(choices)}; fix the spelling")
    for i, row in df.iterrows():
        settings = {setting_key(r.overrides) for r in table_runs(name, [row["dataset"]], controls=False)}
        if row["setting"] not in settings:
            raise AEAError(f"{path} row {i + 2}: setting {row['setting']!r} is not a setting of {name} on "
                           f"{row['dataset']} (e.g. {sorted(settings)[0]!r}); fix the spelling")

