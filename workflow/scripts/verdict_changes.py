"""Compare the verdicts of two result folders of the same runs made another way (another machine, thread count):
every comparison of every claims file found in both, with its status in each and the kind of change; a CSV, and
the counts printed.

    python workflow/scripts/verdict_changes.py RESULTS_A RESULTS_B --out docs/reproducibility/NAME.csv
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from aea.tables.aggregate import write_csv
from aea.tables.claims import status_changes
from aea.tables.report import read_claims


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a", type=Path)
    parser.add_argument("b", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    names = sorted({p.name for p in args.a.glob("*.claims.csv")} & {p.name for p in args.b.glob("*.claims.csv")})
    if not names:
        raise SystemExit(f"no <table>.claims.csv in both {args.a} and {args.b}")
    table = pd.concat([status_changes(read_claims(args.a / n), read_claims(args.b / n)) for n in names])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_csv(table, args.out)
    print(table.groupby(["table", "change"]).size().to_string())


if __name__ == "__main__":
    main()
