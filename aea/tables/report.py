"""A table against the paper: the cell-by-cell diff, the claims, the markdown report, the entry points.

The diff: ``delta`` = our mean - the paper's value; ``within_spread`` says
whether the paper's value lies in our seeds' min..max (widened by 0.05 for the
paper's one-decimal rounding; min..max rather than mean +- std because a handful
of seeds estimates a std poorly), "n/a (1 seed)" with one seed, and "paper value
unknown" where the reference cell is empty; no paper value is ever guessed.
The claims (``claims``) are decided from the runs' per-query results when the
table is built and kept in ``<table>.claims.csv``, so a re-diff after filling
paper cells (``aea compare``) needs only the written files.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from aea.errors import AEAError
from aea.io import read_json, write_text
from aea.machine import machine_text
from aea.names import DATASET_LABELS
from aea.tables.aggregate import (
    build_table,
    collect_provenance,
    group_runs,
    load_metrics,
    provenance_path,
    read_table,
    write_csv,
    write_table,
)
from aea.tables.claims import CLAIMS, HARNESS, evaluate_claims, interval_text, seeds_needed_text
from aea.tables.paper import read_paper, read_peers
from aea.tables.specs import KEY_COLUMNS, METHOD_LABELS, add_param_columns, get_spec

log = logging.getLogger(__name__)

DIFF_VALUE_COLUMNS = ["profile", "paper", "source", "ours", "std", "min", "max", "n_seeds", "seeds",
                      "delta", "within_spread"]
# The paper prints one decimal: its value stands for anything within +-0.05.
PAPER_ROUNDING = 0.05
NOT_IN_PAPER = "not in the paper"  # a control row of the harness's (TableSpec.controls): no paper value exists
CONTROL_SOURCE = f"{NOT_IN_PAPER}: the harness's control"


def table_files(name: str, out_dir: str | Path) -> list[Path]:
    """Every file ``make_table`` writes for table ``name`` (the workflow's outputs)."""
    out_dir = Path(out_dir)
    suffixes = [".csv", ".provenance.json", ".claims.csv", ".diff.csv", ".diff.md"]
    suffixes += [".png"] if get_spec(name).figure_param else []
    return [out_dir / f"{name}{suffix}" for suffix in suffixes]


def _within(paper: float, ours: Mapping[str, Any] | None, source: str) -> str:
    """Paper value inside our seeds' min..max (widened by the paper's rounding)?"""
    if source == CONTROL_SOURCE:
        return NOT_IN_PAPER
    if math.isnan(paper):
        return "paper value unknown"
    if ours is None:
        return "n/a (run missing)"
    if ours["n_seeds"] < 2:
        return "n/a (1 seed)"
    return "yes" if ours["min"] - PAPER_ROUNDING <= paper <= ours["max"] + PAPER_ROUNDING else "no"


def diff_table(ours: pd.DataFrame, paper: pd.DataFrame) -> pd.DataFrame:
    """Cell-by-cell comparison with the paper.

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
            "delta": mean - paper_value, "within_spread": _within(paper_value, o, source),
        })

    paper_keys = set()
    for r in paper.to_dict("records"):
        key = tuple(r[c] for c in KEY_COLUMNS)
        paper_keys.add(key)
        add(key, float(r["value"]), str(r["source"]))
    controls = get_spec(name).controls if name else ()
    for key in ours_cells:
        if key not in paper_keys and key[KEY_COLUMNS.index("metric")] in paper_metrics:
            control = key[KEY_COLUMNS.index("method")] in controls
            add(key, math.nan, CONTROL_SOURCE if control else "not in the paper reference CSV")
    diff = pd.DataFrame(rows, columns=KEY_COLUMNS + DIFF_VALUE_COLUMNS)
    diff = add_param_columns(diff, params)
    return diff[KEY_COLUMNS + params + DIFF_VALUE_COLUMNS]


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


def diff_markdown(diff: pd.DataFrame, claims: pd.DataFrame, context: pd.DataFrame | None = None,
                  machines: Sequence[Mapping[str, Any]] = ()) -> str:
    """The readable report: header (profile, seeds, machines, caveats), the cells, the claims, peers' context."""
    name = str(diff["table"].iloc[0]) if len(diff) else (str(claims["table"].iloc[0]) if len(claims) else "?")
    profiles = sorted({p for p in diff["profile"] if p})
    seeds = sorted({int(s) for cell in diff["seeds"] for s in str(cell).split(";") if s != ""})
    profile = ", ".join(profiles) or "(no runs)"
    lines = [f"# {name}: our runs vs. the AEA paper ({get_spec(name).paper_ref})", ""]
    lines.append(f"- Profile: `{profile}`; seeds: {', '.join(map(str, seeds)) or 'none'}.")
    if machines:
        lines.append("- Machine" + ("s" if len(machines) > 1 else "") + " of the runs: "
                     + "; ".join(machine_text(m) for m in machines) + ". Another CPU, thread count or library "
                     "version gives other digits; verdicts reproduce within their error rate.")
    if profiles != ["paper"]:
        lines.append(f"- **The `{profile}` profile is not expected to match the paper's numbers** (generated "
                     "or reduced data, small model, few epochs): it checks the pipeline, not the paper.")
    lines += [
        "- ours = mean over seeds ± sample std (n = seeds); values in %, rounded here, full precision in the CSV.",
        "- delta = ours - paper; 'within seeds' = the paper value lies in our seeds' min..max "
        f"(± {PAPER_ROUNDING} for the paper's rounding to one decimal).",
        "- 'paper value unknown' = the paper's number is not available to us; fill it in results/paper/ "
        "and rebuild. No value is ever guessed.",
    ]
    controls = get_spec(name).controls
    if controls:
        lines.append(f"- '{NOT_IN_PAPER}' = a control row the harness adds ("
                     + ", ".join(METHOD_LABELS[m].lower() for m in controls) + "): the paper has no such row, so "
                     "it is compared with the paper's methods by the harness's own claims below, never with the paper.")
    lines += [
        "",
        "## Cells",
        "",
    ]
    body = []
    for r in diff.to_dict("records"):
        paper = (NOT_IN_PAPER if r["within_spread"] == NOT_IN_PAPER else
                 "paper value unknown" if math.isnan(r["paper"]) else _fmt(r["paper"]))
        body.append([METHOD_LABELS.get(r["method"], r["method"]), DATASET_LABELS.get(r["dataset"], r["dataset"]),
                     r["setting"], r["metric"], paper, _ours_text(r), _fmt(r["delta"], signed=True),
                     r["within_spread"]])
    lines.append(_markdown_table(["method", "dataset", "setting", "metric", "paper", "ours", "delta",
                                  "within seeds"], body))
    lines += claims_markdown(claims)
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
               context: pd.DataFrame | None = None, machines: Sequence[Mapping[str, Any]] = ()) -> None:
    """``<table>.diff.csv`` (the cells) and ``<table>.diff.md`` (cells, claims, peers' context)."""
    write_csv(diff, out_csv)
    write_text(out_md, diff_markdown(diff, claims, context, machines))


def claims_markdown(claims: pd.DataFrame) -> list[str]:
    """Each claim's verdict, then its comparisons: paired difference [95% interval] (seeds), status and the seeds
    an inconclusive one needs."""
    lines = ["", "## Claims", "",
             "Each comparison: paired difference winner - loser in points, mean over the seeds both ran, "
             "with its 95% t interval over the per-seed differences (calibrated by simulation: "
             "docs/statistics.md); `holds` = interval above 0, `fails` = below 0, `inconclusive` = contains 0, "
             "with the seeds that would decide it (80% power if the observed difference and seed spread were "
             "the truth). A claim holds when all its comparisons hold, fails when one fails after a Bonferroni "
             "correction over its comparisons. A claim marked *the harness's* is not the paper's: it tests a "
             "control the paper lacks, decided the same way.", ""]
    for text, rows in claims.groupby("claim", sort=False):
        first = rows.iloc[0]
        by = " *(the harness's claim, not the paper's)*" if first.get("claimed_by") == HARNESS else ""
        lines += [f"### {first['verdict']}: {text}{by}", "", f"{first['detail']}", ""]
        body = [[r["winner"], r["loser"], DATASET_LABELS.get(r["dataset"], r["dataset"]), r["metric"],
                 interval_text(r), r["status"], seeds_needed_text(r)] for r in rows.to_dict("records")]
        lines += [_markdown_table(["claimed winner", "loser", "dataset", "metric",
                                   "difference [95% CI] (seeds)", "status", "seeds needed"], body), ""]
    return lines


def read_claims(path: str | Path) -> pd.DataFrame:
    """A ``<table>.claims.csv`` written by ``make_table``."""
    if not Path(path).is_file():
        raise AEAError(f"{path} not found; rebuild the table with `snakemake --cores all {Path(path).parent}/"
                       f"{Path(path).name.split('.')[0]}.csv`")
    numeric = ("diff", "low", "high", "n_seeds", "n_queries", "seed_sd", "seeds_needed")
    return pd.read_csv(path, keep_default_na=False, na_values={c: [""] for c in numeric})


def make_table(name: str, metrics_paths: Sequence[str | Path], out_dir: str | Path, paper_dir: str | Path) -> None:
    """Everything for one table: ``<name>.csv`` + provenance, claims, diff csv/md, and the PNG of a figure."""
    out_dir = Path(out_dir)
    metrics = load_metrics(metrics_paths)
    table = build_table(name, metrics)
    claims = evaluate_claims(group_runs(name, metrics), CLAIMS.get(name, []))  # a table may state none
    write_table(table, out_dir / f"{name}.csv", collect_provenance(name, metrics, list(metrics_paths)))
    write_csv(claims, out_dir / f"{name}.claims.csv")
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
    claims = read_claims(out_dir / f"{name}.claims.csv")
    paper = read_paper(paper_dir, name)
    diff = diff_table(table, paper)
    provenance = provenance_path(table_csv)
    machines = read_json(provenance).get("machines", []) if provenance.is_file() else []
    write_diff(diff, claims, out_dir / f"{name}.diff.csv", out_dir / f"{name}.diff.md", read_peers(paper_dir, name),
               machines)
    if spec.figure_param:
        from aea.viz import plot_sweep  # matplotlib only when a figure is drawn: the workflow parses torch-free

        plot_sweep(table, spec.figure_param, out_dir / f"{name}.png", paper=paper, labels=DATASET_LABELS)
    return claims
