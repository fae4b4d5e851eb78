"""Test-time features and the run's ``metrics.json`` (``aea evaluate``)."""

from __future__ import annotations

import logging
import subprocess
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from tqdm import tqdm

from aea.config import TEST_FEATURE_NORMS
from aea.data.datasets import Record, Split
from aea.data.loaders import build_test_loader
from aea.methods import get_method
from aea.metrics import RankingResult, evaluate_features
from aea.models.aea import TwoNetworks, concat_features
from aea.train import basic_network, load_run, pick_device

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.json"


def feature_fn(model: torch.nn.Module, which: str, norm: str = "per_half") -> Callable[[torch.Tensor], torch.Tensor]:
    """Images -> L2-normalised test features of ``which`` network ("basic", "complementary" or "concat",
    the last by the ``norm`` reading)."""
    if isinstance(model, TwoNetworks):
        return lambda x: model.features(x, which, norm)
    if which != "basic":
        raise ValueError(f"a single-network model has no {which!r} feature")
    return lambda x: F.normalize(basic_network(model)(x).feature.float(), dim=1)


@torch.no_grad()
def extract_features(fn: Callable[[torch.Tensor], torch.Tensor], records: list[Record], *, height: int, width: int,
                     batch_size: int, num_workers: int, device: torch.device, desc: str = "features") -> torch.Tensor:
    """Features of ``records`` in listing order, (N, D) float32 on the CPU."""
    loader = build_test_loader(records, height=height, width=width, batch_size=batch_size, num_workers=num_workers)
    batches = tqdm(loader, desc=desc, leave=False, disable=None)
    chunks = [fn(batch["images"].to(device)).float().cpu() for batch in batches]
    return torch.cat(chunks)


def git_commit(cwd: Path | None = None) -> str:
    """The current git commit (with ``-dirty`` when the tree has changes), or "unknown" outside a checkout."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def pids_cams(records: Iterable[Record]) -> tuple[torch.Tensor, torch.Tensor]:
    records = list(records)
    return torch.tensor([r.pid for r in records]), torch.tensor([r.camid for r in records])


def evaluate_run(run_dir: Path, split: Split, *, device: str = "auto") -> dict[str, Any]:
    """Features of query and gallery with the run's test feature, ranked by Euclidean distance.

    Besides the metrics, ``per_query`` holds each valid query's APs and first-match rank (paired comparisons
    between runs on one test set), and ``alternatives`` the same for the other reading of an open test-time
    choice (``test_feature_norm`` for concatenated features): one extraction serves both readings.
    """
    run_dir = Path(run_dir)
    cfg, model, record = load_run(run_dir, pick_device(device))
    method = get_method(cfg.method, cfg.peer_form)
    started = time.perf_counter()
    kwargs = dict(height=cfg.height, width=cfg.width, batch_size=cfg.eval_batch_size, num_workers=cfg.num_workers,
                  device=next(model.parameters()).device)
    q_pids, q_cams = pids_cams(split.query)
    g_pids, g_cams = pids_cams(split.gallery)

    def rank(q_feat: torch.Tensor, g_feat: torch.Tensor) -> RankingResult:
        return evaluate_features(q_feat, g_feat, q_pids.numpy(), g_pids.numpy(), q_cams.numpy(), g_cams.numpy())

    if method.test_feature == "concat":
        fn = lambda x: torch.cat(model.raw_features(x), dim=1)  # noqa: E731  (one extraction, both readings)
        q_raw = extract_features(fn, split.query, desc="query features", **kwargs)
        g_raw = extract_features(fn, split.gallery, desc="gallery features", **kwargs)
        half = q_raw.shape[1] // 2
        readings = {norm: rank(concat_features(q_raw[:, :half], q_raw[:, half:], norm),
                               concat_features(g_raw[:, :half], g_raw[:, half:], norm))
                    for norm in TEST_FEATURE_NORMS}
        result, feature_dim = readings[cfg.test_feature_norm], int(q_raw.shape[1])
        alternatives = {f"test_feature_norm={norm}": {**r.as_dict(), "per_query": r.per_query()}
                        for norm, r in readings.items() if norm != cfg.test_feature_norm}
    else:
        fn = feature_fn(model, method.test_feature)
        q_feat = extract_features(fn, split.query, desc="query features", **kwargs)
        result = rank(q_feat, extract_features(fn, split.gallery, desc="gallery features", **kwargs))
        feature_dim, alternatives = int(q_feat.shape[1]), {}
    return {
        "profile": cfg.profile, "dataset": cfg.dataset, "method": cfg.method, "run_name": run_dir.parent.name,
        "seed": cfg.seed, "overrides": record["overrides"], "config": cfg.to_dict(),
        "feature": method.test_feature, "feature_dim": feature_dim,
        **result.as_dict(), "num_gallery": len(split.gallery),
        "train_seconds": float(record["train_seconds"]),
        "eval_seconds": time.perf_counter() - started,
        "device": str(kwargs["device"]), "git_commit": git_commit(Path(__file__).parent), "config_hash": cfg.hash(),
        "per_query": result.per_query(), "alternatives": alternatives,
    }
