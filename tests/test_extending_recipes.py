"""docs/extending.md's recipes "Add a method" and "Add a table", taken from the page itself and followed in a copy
of the house, then run on tiny data through the real workflow: the files the recipes name are the only ones edited.

The page's example is a toy erasing strategy (the bottom R % of rows), a method that feeds it to the complementary
network, and a table of AEA against it with a claim of the harness's: `snakemake .../tablex.csv` trains what the
table needs (the new method takes its basic network from Baseline 1, as aea.runs.run_inputs says) and writes the
table and its claims.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from test_extending import code_blocks, recipe  # noqa: E402  (the page's sections and code blocks)
from test_workflow import OUT, REPO, RUNS, snakemake, workflow_copy  # noqa: E402  (the workflow test's helpers)


def insert_after(path: Path, anchor: str, text: str, last: bool = False) -> None:
    """Insert ``text`` after the first (``last``: the last) line of ``path`` whose stripped text starts with
    ``anchor``, each line indented as that one (the recipes' snippets stand inside brackets, where Python reads no
    indentation)."""
    lines = path.read_text().splitlines(keepends=True)
    found = [i for i, line in enumerate(lines) if line.strip().startswith(anchor)]
    at = found[-1] if last else found[0]
    indent = lines[at][: len(lines[at]) - len(lines[at].lstrip())]
    block = "".join(indent + line.strip() + "\n" if line.strip() else "\n" for line in text.strip("\n").splitlines())
    path.write_text("".join(lines[: at + 1]) + block + "".join(lines[at + 1:]))


def test_add_a_method_and_a_table_as_docs_extending_says(tmp_path, monkeypatch):
    method_class, method_lines = code_blocks(recipe("Add a method"), "python")
    table_spec, table_claims = code_blocks(recipe("Add a table"), "python")
    commands = [line.split("#")[0].strip() for line in code_blocks(recipe("Add a table"), "bash")[0].splitlines()]
    house = workflow_copy(tmp_path / "house")
    for package in ("aea", "kernels"):
        shutil.copytree(REPO / package, house / package, ignore=shutil.ignore_patterns("__pycache__"))
    before = {p: p.read_bytes() for p in house.rglob("*") if p.is_file()}

    with open(house / "aea/erasing.py", "a") as f:  # "Add a method": the class at the end of aea/erasing.py
        f.write("\n\n" + method_class)
    strategy_line, method_line = method_lines.strip().splitlines()
    insert_after(house / "aea/methods.py", "Strategy(", strategy_line, last=True)  # the last of STRATEGIES
    insert_after(house / "aea/methods.py", "_method(", method_line, last=True)  # the last of REGISTRY
    # "Add a table": its spec in TABLES, its claim in CLAIMS
    insert_after(house / "aea/tables/specs.py", "for spec in (", table_spec)
    insert_after(house / "aea/tables/claims.py", "CLAIMS: dict[str, list[Claim]] = {", table_claims)
    monkeypatch.setenv("PYTHONPATH", str(house))  # the copy's aea for `aea`, snakemake and every job it runs
    assert commands[0] == "aea paper-template tablex"
    template = subprocess.run([sys.executable, "-m", "aea.cli", *commands[0].split()[1:]], cwd=house,
                              capture_output=True, text=True)
    assert template.returncode == 0, template.stderr
    edited = {p.relative_to(house).as_posix() for p in house.rglob("*")
              if p.is_file() and before.get(p) != p.read_bytes()}
    assert edited == {"aea/erasing.py", "aea/methods.py", "aea/tables/specs.py", "aea/tables/claims.py",
                      "results/paper/tablex.csv"}

    assert commands[1] == f"snakemake --cores all --config profile=tiny -- {OUT}/tablex.csv"
    done = snakemake(house, "--quiet", "rules", "--config", "profile=tiny", "train_threads=1", "--",
                     f"{OUT}/tablex.csv", timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    table = pd.read_csv(house / OUT / "tablex.csv")
    assert set(table.method) == {"aea", "lowerrows"} and set(table.dataset) == {"market1501"}
    log = pd.read_csv(house / RUNS / "market1501/lowerrows/seed0/train_log.csv")
    joint = log[log.joint == 1]
    assert len(joint) and (joint.erased_fraction == round(64 * 0.10) / 64).all()  # tiny: 64 rows, erase_ratio 10
    claims = pd.read_csv(house / OUT / "tablex.claims.csv")
    assert list(claims.claim.unique()) == ["AEA beats lower rows erased on Market-1501"]
    assert set(claims.claimed_by) == {"harness"} and len(claims) == 2
