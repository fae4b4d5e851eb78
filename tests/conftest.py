"""Shared fixtures (small generated datasets, made once per test session) and the one choice of Triton's mode."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch

# Triton fixes interpreter vs compiled mode when it is first imported, and importing the package
# (aea.train pulls in torch's optimisers, which import triton) already does so. Choose the CPU
# interpreter here, before any test module is collected, when there is no GPU (the only place that sets it).
if "TRITON_INTERPRET" not in os.environ and not torch.cuda.is_available():
    os.environ["TRITON_INTERPRET"] = "1"

from aea.data.datasets import MARKET_DIR, load_dataset  # noqa: E402  (after the Triton mode is chosen)
from aea.data.synthetic import make_synthetic  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _keep_torch_threads():
    """An in-process ``aea ... --threads N`` sets torch's thread count for the whole pytest process; restore it,
    so a later test's in-process training runs with the same threads (and the same float sums) as before."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory) -> Path:
    """A data root with the tiny generated Market-1501 (the real on-disk format)."""
    root = tmp_path_factory.mktemp("data")
    make_synthetic("market1501", root, size="tiny", seed=0)
    return root


@pytest.fixture(scope="session")
def tiny_market(tiny_root):
    return load_dataset("market1501", tiny_root)


@pytest.fixture
def market_copy(tmp_path: Path, tiny_root: Path) -> Path:
    """A data root holding a fresh copy of the tiny generated Market-1501, without its split cache: one to damage."""
    root = tmp_path / "data"
    shutil.copytree(tiny_root / MARKET_DIR, root / MARKET_DIR, ignore=shutil.ignore_patterns("aea_split*.json"))
    return root
