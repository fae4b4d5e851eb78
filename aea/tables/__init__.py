"""Run metrics -> the paper's tables, diffed against the paper, with the paper's claims decided.

Modules, in the order the data flows:
  specs           which runs make each table; cell setting keys
  aggregate       runs' metrics.json -> statistics over seeds per cell; provenance; CSV in/out
  claims          the paper's worded claims as paired comparisons with bootstrap intervals
  paper           the paper's reference values and peers' numbers (validated)
  report          the diff against the paper and the markdown report; ``make_table`` / ``compare_table``
  interpretations every open reading of the paper run both ways, with paired differences
Nothing here imports torch: the workflow imports this package to list a table's runs.
"""

from aea.names import DATASET_LABELS, DATASETS
from aea.tables.aggregate import (
    STAT_COLUMNS,
    build_table,
    collect_provenance,
    group_runs,
    load_metrics,
    read_table,
    write_table,
)
from aea.tables.claims import CLAIMS, Claim, Comparison, evaluate_claims
from aea.tables.interpretations import (
    CHOICES,
    interpretation_files,
    interpretation_runs,
    make_interpretations,
)
from aea.tables.paper import PAPER_TEXT_SOURCE, paper_skeleton, read_paper, read_peers
from aea.tables.report import compare_table, diff_markdown, diff_table, make_table, table_files, write_diff
from aea.tables.specs import (
    KEY_COLUMNS,
    METHOD_LABELS,
    TABLES,
    RunSpec,
    TableSpec,
    get_spec,
    metrics_paths,
    parse_setting,
    runs_metrics_paths,
    setting_key,
    table_runs,
)

__all__ = [
    "CHOICES", "CLAIMS", "DATASETS", "DATASET_LABELS", "KEY_COLUMNS", "METHOD_LABELS", "PAPER_TEXT_SOURCE",
    "STAT_COLUMNS", "TABLES", "Claim", "Comparison", "RunSpec", "TableSpec", "build_table", "collect_provenance",
    "compare_table", "diff_markdown", "diff_table", "evaluate_claims", "get_spec", "group_runs",
    "interpretation_files", "interpretation_runs", "load_metrics", "make_interpretations", "make_table",
    "metrics_paths", "paper_skeleton", "parse_setting", "read_paper", "read_peers", "read_table",
    "runs_metrics_paths", "setting_key", "table_files", "table_runs", "write_diff", "write_table",
]
