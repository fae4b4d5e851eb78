"""Shared fixtures: small generated datasets, made once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from aea.data.datasets import load_dataset
from aea.data.synthetic import make_synthetic

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory) -> Path:
    """A data root with the tiny generated Market-1501 (the real on-disk format)."""
    root = tmp_path_factory.mktemp("data")
    make_synthetic("market1501", root, size="tiny", seed=0)
    return root


@pytest.fixture(scope="session")
def tiny_market(tiny_root):
    return load_dataset("market1501", tiny_root)
