"""Generated tiny datasets shared by the data tests (written once per session into a temp dir).

Tests marked ``full`` (the full-size generated CUHK03: minutes and gigabytes) are deselected unless the
``-m`` expression names them: ``pytest tests/data -m full``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from aea.data.synthetic import make_synthetic


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "full: full-size generated CUHK03 (minutes, GBs); run with -m full")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "full" in (config.getoption("markexpr") or ""):
        return  # the user's -m decides
    full = [item for item in items if item.get_closest_marker("full")]
    if full:
        config.hook.pytest_deselected(items=full)
        items[:] = [item for item in items if not item.get_closest_marker("full")]


@pytest.fixture(scope="session")
def tiny_releases(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Market, Duke and the CUHK03 .mat release (labeled + detected), tiny size, seed 0."""
    root = tmp_path_factory.mktemp("tiny")
    for name in ("market1501", "dukemtmcreid", "cuhk03"):
        make_synthetic(name, root, size="tiny", seed=0)
    return root


@pytest.fixture(scope="session")
def tiny_np_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The CUHK03-NP folder layout (labeled + detected), tiny size, seed 0."""
    root = tmp_path_factory.mktemp("tiny_np")
    make_synthetic("cuhk03", root, size="tiny", seed=0, layout="np")
    return root


@pytest.fixture
def copy_of(tmp_path: Path, tiny_releases: Path):
    """copy_of(*names) -> a fresh data root holding copies of those entries of the tiny root (safe to damage)."""

    def copy(*names: str) -> Path:
        root = tmp_path / "root"
        root.mkdir(exist_ok=True)
        for name in names:
            src = tiny_releases / name
            if src.is_dir():
                shutil.copytree(src, root / name, ignore=shutil.ignore_patterns("aea_split*.json", "images_*"))
            else:
                shutil.copy2(src, root / name)
        return root

    return copy
