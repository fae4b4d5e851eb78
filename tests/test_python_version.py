"""The Python version is stated once, in pyproject.toml's requires-python; everything else that names it agrees.

ruff reads requires-python itself (no target-version of its own); the conda environment of the workflow
(workflow/envs/aea.yaml) and any "Python >= X.Y" in README.md or docs/ must give the same lower bound.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def lower_bound(spec: str) -> str:
    """``3.11`` from ``>=3.11`` (the only form this project uses)."""
    found = re.fullmatch(r"\s*>=\s*(\d+\.\d+)\s*", spec)
    assert found, f"expected a plain lower bound such as '>=3.11', got {spec!r}"
    return found[1]


REQUIRED = lower_bound(PYPROJECT["project"]["requires-python"])


def test_ruff_takes_the_version_from_requires_python():
    assert "target-version" not in PYPROJECT["tool"]["ruff"], \
        "ruff infers its target from requires-python; a target-version of its own is a second statement"


def test_workflow_environment_asks_for_the_same_python():
    env = yaml.safe_load((REPO / "workflow/envs/aea.yaml").read_text())
    pythons = [dep for dep in env["dependencies"] if isinstance(dep, str) and re.match(r"python\b", dep)]
    assert len(pythons) == 1, pythons
    assert lower_bound(pythons[0].removeprefix("python")) == REQUIRED, \
        f"workflow/envs/aea.yaml says {pythons[0]!r}, pyproject.toml requires-python >= {REQUIRED}"


def test_docs_name_the_same_python():
    pages = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
    stated = {(page.relative_to(REPO).as_posix(), version) for page in pages
              for version in re.findall(r"Python\s*(?:>=|≥|version)\s*(\d+\.\d+)", page.read_text())}
    assert {(page, version) for page, version in stated if version != REQUIRED} == set()


def test_lower_bound_reads_only_a_plain_bound():
    assert lower_bound(">= 3.12") == "3.12"
    for spec in (">3.11", "~=3.11", ">=3.11,<3.13", "3.11"):
        try:
            lower_bound(spec)
        except AssertionError:
            continue
        raise AssertionError(f"{spec!r} was read as a plain lower bound")
