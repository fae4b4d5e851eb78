"""docs/extending.md's recipes "Add a method" and "Add a table", followed to the letter in a copy of the house and
run on tiny data through the real workflow: the files the recipes name are the only ones edited.

A toy erasing strategy (the bottom R % of rows), a method that feeds it to the complementary network, and a table
of AEA against it with a claim of the harness's: `snakemake .../tablex.csv` trains what the table needs (the new
method takes its basic network from Baseline 1, as aea.runs.run_inputs says) and writes the table and its claims.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from test_workflow import OUT, REPO, RUNS, snakemake, workflow_copy  # noqa: E402  (the workflow test's helpers)

# "Add a method", step 1: the strategy's class, in aea/erasing.py
STRATEGY_CLASS = '''

class LowerRowsErasing(Erasing):
    """Toy strategy: the bottom ``ratio`` % of each image's rows."""

    def __init__(self, ratio: float, fill: Fill = 0.0) -> None:
        self.ratio, self.fill = _check_ratio(ratio), fill

    def _erase(self, batch: EraseInput) -> tuple[torch.Tensor, torch.Tensor]:
        images = batch.images
        rows = round(images.shape[-2] * self.ratio / 100)
        mask = torch.zeros(images.shape[0], *images.shape[-2:], dtype=torch.bool, device=images.device)
        mask[:, images.shape[-2] - rows:] = True
        return apply_mask(images, mask, self.fill), mask
'''
# step 2: its declaration, one line in aea.methods.STRATEGIES; step 3: the method, one line in aea.methods.REGISTRY
STRATEGY_LINE = '        Strategy("lower-rows", "LowerRowsErasing", reads=_RATIO_FILL),\n'
METHOD_LINE = '        _method("lowerrows", "Two networks, lower rows erased", "lower-rows"),\n'
# "Add a table": its spec, one entry of aea.tables.specs.TABLES; its claims, one entry of aea.tables.claims.CLAIMS
TABLE_LINE = ('        TableSpec("tablex", "harness table X", ("aea", "lowerrows"), ("market1501",), '
              '("rank1", "mAP")),\n')
CLAIM_LINES = ('    "tablex": [Claim("tablex", "AEA beats lower rows erased on Market-1501", '
               '_beats("aea", ("lowerrows",), ("market1501",), _RM), HARNESS)],\n')


def insert_after(path: Path, anchor: str, text: str) -> None:
    """Insert ``text`` after the first line of ``path`` that starts with ``anchor`` (stripped of indentation)."""
    lines = path.read_text().splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if line.strip().startswith(anchor))
    path.write_text("".join(lines[: at + 1]) + text + "".join(lines[at + 1:]))


def test_add_a_method_and_a_table_as_docs_extending_says(tmp_path, monkeypatch):
    house = workflow_copy(tmp_path / "house")
    for package in ("aea", "kernels"):
        shutil.copytree(REPO / package, house / package, ignore=shutil.ignore_patterns("__pycache__"))
    before = {p: p.read_bytes() for p in house.rglob("*") if p.is_file()}

    with open(house / "aea/erasing.py", "a") as f:
        f.write(STRATEGY_CLASS)
    insert_after(house / "aea/methods.py", 'Strategy("identity"', STRATEGY_LINE)
    insert_after(house / "aea/methods.py", '_method("randbudget"', METHOD_LINE)
    insert_after(house / "aea/tables/specs.py", 'TableSpec("table6"', TABLE_LINE)
    insert_after(house / "aea/tables/claims.py", "CLAIMS: dict[str, list[Claim]] = {", CLAIM_LINES)
    env = {**os.environ, "PYTHONPATH": str(house)}
    template = subprocess.run([sys.executable, "-m", "aea.cli", "paper-template", "tablex"], cwd=house, env=env,
                              capture_output=True, text=True)
    assert template.returncode == 0, template.stderr
    edited = {p.relative_to(house).as_posix() for p in house.rglob("*")
              if p.is_file() and before.get(p) != p.read_bytes()}
    assert edited == {"aea/erasing.py", "aea/methods.py", "aea/tables/specs.py", "aea/tables/claims.py",
                      "results/paper/tablex.csv"}

    monkeypatch.setenv("PYTHONPATH", str(house))  # the copy's aea for snakemake and every `aea` job it runs
    done = snakemake(house, "--quiet", "rules", "--config", "profile=tiny", "train_threads=1", "--",
                     f"{OUT}/tablex.csv", timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    table = pd.read_csv(house / OUT / "tablex.csv")
    assert set(table.method) == {"aea", "lowerrows"} and set(table.dataset) == {"market1501"}
    log = pd.read_csv(house / RUNS / "market1501/lowerrows/seed0/train_log.csv")
    joint = log[log.joint == 1]
    assert (joint.erased_fraction == round(64 * 0.10) / 64).all()  # tiny: 64 rows, erase_ratio 10
    claims = pd.read_csv(house / OUT / "tablex.claims.csv")
    assert list(claims.claim.unique()) == ["AEA beats lower rows erased on Market-1501"]
    assert set(claims.claimed_by) == {"harness"} and len(claims) == 2
