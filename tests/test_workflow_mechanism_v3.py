"""The version-3 mechanism workflow end to end on the tiny profile (workflow/rules/mechanism_v3.smk): 2
generator seeds x 1 training seed, 4 methods, 4 test sets, the table; about 30 s on 2 idle cores."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from aea.data.datasets import MARKER_NAME, MARKET_DIR
from aea.tables import mechanism_v3 as M

REPO = Path(__file__).resolve().parent.parent
SNAKEMAKE = shutil.which("snakemake") or str(Path(sys.executable).parent / "snakemake")
OUT = "results/profiles/tiny/mechanism-v3"
RUNS = "results/runs/mechanism-v3-tiny"


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    clone = tmp_path_factory.mktemp("workflow-v3") / "clone"
    (clone / "results").mkdir(parents=True)
    shutil.copy(REPO / "Snakefile", clone)
    shutil.copytree(REPO / "workflow", clone / "workflow", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "results/paper", clone / "results/paper")
    env = {k: v for k, v in os.environ.items() if k != "AEA_DATA"}
    env["AEA_DATA"] = str(clone.parent / "data")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    done = subprocess.run([SNAKEMAKE, "--cores", "2", "--quiet", "rules", "--config", "profile=tiny", "train_threads=1",
                           "--", f"{OUT}/mechanism.csv"], cwd=clone, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return clone


def test_every_registered_test_and_check_is_in_the_table(clone: Path) -> None:
    table = pd.read_csv(clone / OUT / "mechanism.csv")
    assert table["id"].tolist() == [t.id for t in M.TESTS] + ["coverage", "reliance"]
    primary = table[table["id"].isin([t.id for t in M.PRIMARY])]
    assert (primary["n_generators"] == 2).all() and (primary["df"] == 1).all()
    assert primary["verdict"].isin(["holds", "fails", "inconclusive", "above 0", "below 0"]).all()
    breakdown = table[table["id"].str.startswith("R-")]
    assert breakdown["n_units"].notna().any()  # the any-p1 queries' regions were read from the data roots
    assert table.set_index("id").loc["coverage", "verdict"] in ("holds", "fails")
    units = pd.read_csv(clone / OUT / "mechanism.units.csv")
    assert len(units) == 2 * 4 * 4 and set(units["test_set"]) == set(M.TEST_SETS)
    for ext in ("md", "png", "provenance.json"):
        assert (clone / OUT / f"mechanism.{ext}").is_file()


def test_runs_are_trained_on_p0_and_evaluated_on_the_version_3_test_sets(clone: Path) -> None:
    data = clone.parent / "data/mechanism-v3"
    for gen in (0, 1):
        for test_set, (p, region) in M_SETS.items():
            params = json.loads((data / f"{test_set}-g{gen}" / MARKET_DIR / MARKER_NAME).read_text())["params"]
            assert (params["generator_version"], params["occlusion"], params["occluded_region"], params["seed"]) == (
                3, p, region, gen)
        run = clone / RUNS / f"redundant-g{gen}/noerase/seed0"
        m = json.loads((run / "metrics-upper-p0.4.json").read_text())
        assert m["mechanism"]["data"]["occluded_region"] == "upper" and m["mechanism"]["erase_ratio"] == 40
        assert m["test_root"].endswith(f"upper-p0.4-g{gen}/{MARKET_DIR}")
        assert json.loads((run / "metrics.json").read_text())["mechanism"]["data"]["occlusion"] == 0.0


M_SETS = {"p0": (0.0, "upper"), "upper-p0.2": (0.2, "upper"), "upper-p0.4": (0.4, "upper"), "any-p1": (1.0, "any")}
