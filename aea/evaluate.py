"""Test-time features and the run's ``metrics.json`` (``aea evaluate``).

On the mechanism experiment's data (docs/mechanism.md) the metrics also hold ``mechanism``: the generated data
set's parameters, the IoU of the two networks' top-R% attention on the query images (two-network runs), and the
share of the top-R% attention of the basic network on each body part of the training images (part labels).
"""

from __future__ import annotations

import logging
import subprocess
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from tqdm import tqdm

from aea.config import TEST_FEATURE_NORMS, RunConfig
from aea.data.bodyparts import part_label_path, parts_dir
from aea.data.datasets import MARKER_NAME, Record, Split
from aea.data.loaders import build_test_loader
from aea.device import pick_device
from aea.io import read_json
from aea.machine import machine_record
from aea.mechanism import LABELS, attention_share_per_part, mask_iou
from aea.methods import get_method
from aea.metrics import RankingResult, evaluate_features, evaluate_ranking
from aea.models.aea import TwoNetworks, basic_network, concat_features
from aea.models.branch import ReIDNetwork
from aea.runs import load_run
from kernels.reference import attention_map, resize_map, top_ratio_mask

log = logging.getLogger(__name__)


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
    started = time.perf_counter()
    loader = build_test_loader(records, height=height, width=width, batch_size=batch_size, num_workers=num_workers)
    batches = tqdm(loader, desc=desc, leave=False, disable=None)
    chunks = [fn(batch["images"].to(device)).float().cpu() for batch in batches]
    log.info("%s: %d images in %.1f s", desc, len(records), time.perf_counter() - started)  # logs show no tqdm bar
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


def attention_masks(net: ReIDNetwork, images: torch.Tensor, layer: str, ratio: float) -> torch.Tensor:
    """Bool (B, H, W): the top-``ratio`` % of ``net``'s attention at ``layer``, resized to the images, exactly
    as salient erasing selects pixels (``kernels.reference``: sum of squares, bilinear resize, ties included)."""
    scores = resize_map(attention_map(net.tap(images, layer)), tuple(images.shape[-2:]))
    return top_ratio_mask(scores, ratio)


def part_labels(dataset_dir: str | Path, records: list[Record], height: int, width: int) -> np.ndarray:
    """(N, height, width) uint8 part labels of ``records`` (generator sidecars), resized by nearest neighbour."""
    out = np.empty((len(records), height, width), dtype=np.uint8)
    for i, record in enumerate(records):
        with Image.open(part_label_path(dataset_dir, record.path)) as im:
            out[i] = np.asarray(im.resize((width, height), Image.NEAREST))
    return out


def generated_params(split: Split) -> dict[str, Any] | None:
    """The generator parameters of a mechanism data set (generator version 2), None for any other data."""
    marker = Path(split.root) / MARKER_NAME
    params = read_json(marker).get("params", {}) if marker.is_file() else {}
    return params if params.get("generator") == "bodyparts" else None


CHANCE_DRAWS = 10


def chance_map(q_pids: np.ndarray, g_pids: np.ndarray, q_cams: np.ndarray, g_cams: np.ndarray,
               draws: int = CHANCE_DRAWS) -> float:
    """Mean official mAP of ``draws`` seeded random rankings of the test set (K2's chance level):
    i.i.d. uniform distances rank each query's gallery in a uniformly random order."""
    return float(np.mean([
        evaluate_ranking(np.random.default_rng(i).random((len(q_pids), len(g_pids))), q_pids, g_pids, q_cams,
                         g_cams).map_official for i in range(draws)]))


@torch.no_grad()
def mechanism_metrics(model: TwoNetworks | ReIDNetwork, cfg: RunConfig, split: Split,
                      device: torch.device) -> dict[str, Any]:
    """What docs/mechanism.md measures in a run, at the run's ``erase_layer`` and ``erase_ratio`` (R):

    ``attention_iou`` (two networks): per query image, the IoU of the basic and the complementary network's
    top-R% attention masks, and their mean; ``erased_share_per_part`` (data with part labels): the share of the
    pixels the basic network's top-R% attention selects (AEA's erasing) on each part label, pooled over the
    un-flipped training images, beside ``pixel_share_per_part``, each label's share of all their pixels (C3).
    """
    out: dict[str, Any] = {"erase_layer": cfg.erase_layer, "erase_ratio": cfg.erase_ratio}

    def batches(records: list[Record]):
        loader = build_test_loader(records, height=cfg.height, width=cfg.width, batch_size=cfg.eval_batch_size,
                                   num_workers=cfg.num_workers)
        return (batch["images"].to(device) for batch in loader)

    if isinstance(model, TwoNetworks):
        ious = np.concatenate([
            mask_iou(attention_masks(model.basic, x, cfg.erase_layer, cfg.erase_ratio).cpu().numpy(),
                     attention_masks(model.complementary, x, cfg.erase_layer, cfg.erase_ratio).cpu().numpy())
            for x in batches(split.query)])
        out["attention_iou"] = {"images": "query", "mean": float(ious.mean()), "per_image": ious.tolist()}
    if parts_dir(split.root).is_dir():
        net = basic_network(model)
        masks = np.concatenate([attention_masks(net, x, cfg.erase_layer, cfg.erase_ratio).cpu().numpy()
                                for x in batches(split.train)])
        labels = part_labels(split.root, split.train, cfg.height, cfg.width)
        erased = attention_share_per_part(masks, labels)
        pixels = np.bincount(labels.ravel(), minlength=len(LABELS)) / labels.size
        out["erased_share_per_part"] = dict(zip(LABELS, erased.tolist()))
        out["pixel_share_per_part"] = dict(zip(LABELS, pixels.tolist()))
        out["images"] = len(split.train)
    return out


def evaluate_run(run_dir: Path, split: Split, *, device: str = "auto") -> dict[str, Any]:
    """Features of query and gallery with the run's test feature, ranked by Euclidean distance.

    Besides the metrics, ``per_query`` holds each valid query's APs and first-match rank (paired comparisons
    between runs on one test set), and ``alternatives`` the same for the other reading of an open test-time
    choice (``test_feature_norm`` for concatenated features): one extraction serves both readings.
    ``mechanism`` (``mechanism_metrics`` and the generator's parameters) for two-network runs and for runs on
    the mechanism experiment's data, else None.
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
    generated = generated_params(split)
    mechanism = None
    if generated is not None or method.two_networks:
        mechanism = {"data": generated, **mechanism_metrics(model, cfg, split, kwargs["device"])}
    if generated is not None:
        mechanism["chance_map_official"] = chance_map(q_pids.numpy(), g_pids.numpy(), q_cams.numpy(),
                                                      g_cams.numpy())
    return {
        "profile": cfg.profile, "dataset": cfg.dataset, "method": cfg.method, "run_name": run_dir.parent.name,
        "seed": cfg.seed, "overrides": record["overrides"], "config": cfg.to_dict(),
        "feature": method.test_feature, "feature_dim": feature_dim,
        **result.as_dict(), "num_gallery": len(split.gallery),
        "train_seconds": float(record["train_seconds"]),
        "eval_seconds": time.perf_counter() - started,
        "device": str(kwargs["device"]), "machine": machine_record(str(kwargs["device"])),
        "git_commit": git_commit(Path(__file__).parent), "config_hash": cfg.hash(),
        "per_query": result.per_query(), "alternatives": alternatives,
        "test_root": str(split.root), "mechanism": mechanism,
    }
