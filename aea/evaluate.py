"""Test-time features and the run's ``metrics.json`` (``aea evaluate``)."""

from __future__ import annotations

import logging
import subprocess
import time
from pathlib import Path
from typing import Any, Callable, Iterable

import torch
import torch.nn.functional as F
from tqdm import tqdm

from aea.data.datasets import Record, Split
from aea.data.loaders import build_test_loader
from aea.metrics import evaluate_features
from aea.methods import get_method
from aea.models.aea import TwoNetworks
from aea.train import basic_network, load_run, pick_device

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.json"


def feature_fn(model: torch.nn.Module, which: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """Images -> L2-normalised test features of ``which`` network ("basic", "complementary" or "concat")."""
    if isinstance(model, TwoNetworks):
        return lambda x: model.features(x, which)
    if which != "basic":
        raise ValueError(f"a single-network model has no {which!r} feature")
    return lambda x: F.normalize(basic_network(model)(x).feature.float(), dim=1)


@torch.no_grad()
def extract_features(fn: Callable[[torch.Tensor], torch.Tensor], records: list[Record], *, height: int, width: int,
                     batch_size: int, num_workers: int, device: torch.device, desc: str = "features") -> torch.Tensor:
    """Features of ``records`` in listing order, (N, D) float32 on the CPU."""
    loader = build_test_loader(records, height=height, width=width, batch_size=batch_size, num_workers=num_workers)
    chunks = [fn(batch["images"].to(device)).float().cpu() for batch in tqdm(loader, desc=desc, leave=False, disable=None)]
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
    """Features of query and gallery with the run's test feature, ranked by Euclidean distance."""
    run_dir = Path(run_dir)
    cfg, model, record = load_run(run_dir, pick_device(device))
    method = get_method(cfg.method)
    fn = feature_fn(model, method.test_feature)
    started = time.perf_counter()
    kwargs = dict(height=cfg.height, width=cfg.width, batch_size=cfg.eval_batch_size, num_workers=cfg.num_workers,
                  device=next(model.parameters()).device)
    q_feat = extract_features(fn, split.query, desc="query features", **kwargs)
    g_feat = extract_features(fn, split.gallery, desc="gallery features", **kwargs)
    q_pids, q_cams = pids_cams(split.query)
    g_pids, g_cams = pids_cams(split.gallery)
    result = evaluate_features(q_feat, g_feat, q_pids.numpy(), g_pids.numpy(), q_cams.numpy(), g_cams.numpy())
    return {
        "profile": cfg.profile, "dataset": cfg.dataset, "method": cfg.method, "run_name": run_dir.parent.name,
        "seed": cfg.seed, "overrides": record["overrides"], "config": cfg.to_dict(),
        "feature": method.test_feature, "feature_dim": int(q_feat.shape[1]),
        **result.as_dict(), "num_gallery": len(split.gallery),
        "train_seconds": float(record["train_seconds"]),
        "eval_seconds": time.perf_counter() - started,
        "device": str(kwargs["device"]), "git_commit": git_commit(Path(__file__).parent), "config_hash": cfg.hash(),
    }
