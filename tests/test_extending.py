"""docs/extending.md's recipes followed for real: in a temporary copy of the package, with only the files a recipe
lists changed, the new thing runs on tiny generated data."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RECIPES = REPO / "docs" / "extending.md"


def recipe(heading: str) -> str:
    """The text of one "## ..." section of docs/extending.md."""
    text = RECIPES.read_text()
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end >= 0 else len(text)]


def code_blocks(section: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", section, flags=re.S)


def package_copy(tmp_path: Path) -> Path:
    """A copy of the aea package (and nothing else) under tmp_path/src, for PYTHONPATH."""
    src = tmp_path / "src"
    shutil.copytree(REPO / "aea", src / "aea", ignore=shutil.ignore_patterns("__pycache__"))
    return src


def changed_files(src: Path) -> list[str]:
    """The copy's files that differ from (or are not in) the repository's package."""
    changed = []
    for path in sorted((src / "aea").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            original = REPO / path.relative_to(src)
            if not original.is_file() or original.read_bytes() != path.read_bytes():
                changed.append(str(path.relative_to(src)))
    return changed


def copy_env(src: Path) -> dict[str, str]:
    """The environment of a process that imports the copy: PYTHONPATH puts it before the installed package (its
    working directory must not hold another aea/, which would come first); no AEA_DATA from the caller's."""
    return {k: v for k, v in os.environ.items() if k != "AEA_DATA"} | {"PYTHONPATH": str(src)}


def aea(src: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    """`aea ARGS` run from the copy."""
    result = subprocess.run([sys.executable, "-c", "import sys; from aea.cli import main; sys.exit(main())", *args],
                            cwd=cwd, env=copy_env(src), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"aea {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result


def test_add_dataset_recipe(tmp_path: Path) -> None:
    """The toy dataset of "Add a dataset": its module and its registry line, as the recipe writes them, are the
    only changes; it is then a dataset like the others (labels, generator, parser, training and evaluation)."""
    section = recipe("Add a dataset")
    module, registry = code_blocks(section, "python")[:2]
    name = re.search(r'^ +"(\w+)",\n\)', registry, flags=re.M)[1]  # the line the recipe adds to MODULES
    src = package_copy(tmp_path)
    (src / "aea" / "data" / "families" / f"{name}.py").write_text(module)
    init = src / "aea" / "data" / "families" / "__init__.py"
    before = init.read_text()
    init.write_text(re.sub(r'(\nMODULES = \(\n(?: +"\w+",\n)*)\)', rf'\1    "{name}",\n)', before, count=1))
    added = set(init.read_text().splitlines()) - set(before.splitlines())
    assert added == {f'    "{name}",'}  # one line
    listed = re.findall(r"^\| `([^`]+)` \|", section, flags=re.M)
    assert changed_files(src) == sorted(p.replace("<name>", name) for p in listed)  # exactly the files listed

    probe = ("import sys, aea.names as n; "
             "print(n.DATASETS[-1], n.DATASET_LABELS[n.DATASETS[-1]], 'numpy' in sys.modules)")
    names = subprocess.run([sys.executable, "-c", probe], env=copy_env(src), cwd=tmp_path,
                           capture_output=True, text=True, check=True).stdout.split()
    assert names == [name, "Toy-ReID", "False"]  # registered, labelled, and the registry still loads no numpy

    root, run = tmp_path / "data", tmp_path / "runs" / name / "aea" / "seed0"
    aea(src, "data", "make-synthetic", "--dataset", name, "--size", "tiny", "--root", str(root), cwd=tmp_path)
    release = root / "Toy-ReID-v1"
    images = sorted(p.name for p in (release / "query").iterdir())
    assert images and all(re.fullmatch(r"\d{4}_cam[123]_\d{6}\.png", i) for i in images)  # the release's names
    aea(src, "data", "check", "--dataset", name, "--root", str(root), "--json", str(tmp_path / "check.json"),
        cwd=tmp_path)
    counts = json.loads((tmp_path / "check.json").read_text())[name]
    assert counts["train_ids"] == 16 and counts["cameras"] == 3 and counts["query"] > 0
    aea(src, "train", "--profile", "tiny", "--dataset", name, "--method", "aea", "--out", str(run), "--evaluate",
        "--threads", "1", f"data_root={root}", cwd=tmp_path)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["dataset"] == name and metrics["num_query"] == counts["query"]
    assert 0.0 <= metrics["rank1"] <= 1.0 and 0.0 < metrics["map_official"] <= 1.0

    # the workflow: a profile listing the dataset is all it needs (generation, check, training jobs)
    workflow = tmp_path / "workflow"
    shutil.copytree(REPO / "workflow", workflow / "workflow", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "Snakefile", workflow / "Snakefile")
    (workflow / "toy.yaml").write_text(f"base: tiny\nprofile: toy\ndatasets: [{name}]\n")
    dry_run = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--config", "profile=toy.yaml", "--",
                              f"results/runs/toy/{name}/aea/seed0/metrics.json"], cwd=workflow, env=copy_env(src),
                             capture_output=True, text=True, timeout=300)
    assert dry_run.returncode == 0, dry_run.stdout + dry_run.stderr
    jobs = {rule: int(count) for rule, count in re.findall(r"^(\w+) +(\d+)$", dry_run.stdout, flags=re.M)}
    assert jobs["synthetic_dataset"] == jobs["check_dataset"] == 1
    assert sum(count for rule, count in jobs.items() if rule.startswith("train")) == 1
    assert f"wildcards: release={name}" in dry_run.stdout
