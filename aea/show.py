"""``aea show``: pictures of a trained run (attention maps, erased images, rank lists)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from aea.data.datasets import Split
from aea.data.loaders import build_test_loader
from aea.device import pick_device
from aea.erasing import EraseInput, build_erasing
from aea.errors import AEAError
from aea.evaluate import extract_features, feature_fn, pids_cams
from aea.methods import get_method
from aea.models.aea import TwoNetworks, basic_network
from aea.runs import STATIC_MASKS_FILE, load_run, read_static_masks
from aea.viz import denormalize, plot_attention, plot_erasing, plot_rank_list
from kernels.reference import attention_map, resize_map


def first_batch(records, cfg, count: int) -> dict:
    """The first ``count`` records as one un-augmented batch."""
    loader = build_test_loader(records[:count], height=cfg.height, width=cfg.width, batch_size=count, num_workers=0)
    return next(iter(loader))


@torch.no_grad()
def show_attention(run_dir: Path, split: Split, out_png: Path, *, count: int = 8, device: str = "auto") -> None:
    """Query images and the basic network's attention (the run's erase layer), each map scaled to [0, 1];
    for a two-network run the complementary network's attention below, side by side per image."""
    cfg, model, _ = load_run(run_dir, pick_device(device))
    batch = first_batch(split.query, cfg, count)
    images = batch["images"].to(next(model.parameters()).device)

    def scaled(net) -> np.ndarray:
        maps = net.tap(images, cfg.erase_layer)
        scores = resize_map(attention_map(maps), (cfg.height, cfg.width))
        return (scores / scores.flatten(1).amax(dim=1).clamp_min(1e-12)[:, None, None]).cpu().numpy()

    complementary = scaled(model.complementary) if isinstance(model, TwoNetworks) else None
    plot_attention(denormalize(images.cpu().numpy()), scaled(basic_network(model)), out_png,
                   complementary_maps=complementary)


@torch.no_grad()
def show_erasing(run_dir: Path, split: Split, out_png: Path, *, count: int = 8, device: str = "auto") -> None:
    """Training images above what the run's erasing strategy makes of them (the complementary network's input)."""
    cfg, model, _ = load_run(run_dir, pick_device(device))
    method = get_method(cfg.method, cfg.peer_form)
    if method.erasing is None:
        raise AEAError(f"method {cfg.method} erases nothing; show erasing of a two-network run "
                       "(aea, baseline2, baseline3, baseline4, reda, aos)")
    dev = next(model.parameters()).device
    kwargs = method.erasing.kwargs(cfg)
    if method.erasing.needs == "baseline1_masks":  # computed once by the run's training
        kwargs["masks"] = read_static_masks(Path(run_dir))
        if kwargs["masks"] is None:
            raise AEAError(f"{Path(run_dir) / STATIC_MASKS_FILE} not found: the run's masks are written when it "
                           "trains; train it first")
    strategy = build_erasing(method.erasing, **kwargs)
    batch = first_batch(split.train, cfg, count)
    images = batch["images"].to(dev)
    tapped = basic_network(model).tap(images, cfg.erase_layer)
    generator = torch.Generator(device=dev).manual_seed(cfg.seed)
    erased, _ = strategy.erase(EraseInput(images, features=tapped, indices=batch["indices"].to(dev),
                                          flipped=torch.zeros(len(images), dtype=torch.bool, device=dev),
                                          generator=generator))
    plot_erasing(denormalize(images.cpu().numpy()), denormalize(erased.cpu().numpy()), out_png)


@torch.no_grad()
def show_ranks(run_dir: Path, split: Split, out_png: Path, *, query: int = 0, top: int = 10,
               device: str = "auto") -> None:
    """Query ``query`` and its top-``top`` gallery images under the run's test feature (junk left out)."""
    cfg, model, _ = load_run(run_dir, pick_device(device))
    if not 0 <= query < len(split.query):
        raise AEAError(f"--query {query} is outside 0..{len(split.query) - 1}")
    fn = feature_fn(model, get_method(cfg.method, cfg.peer_form).test_feature, cfg.test_feature_norm)
    kwargs = dict(height=cfg.height, width=cfg.width, batch_size=cfg.eval_batch_size, num_workers=cfg.num_workers,
                  device=next(model.parameters()).device)
    q = split.query[query]
    q_feat = extract_features(fn, [q], desc="query", **kwargs)
    g_feat = extract_features(fn, split.gallery, desc="gallery", **kwargs)
    g_pids, g_cams = pids_cams(split.gallery)
    distances = torch.cdist(q_feat, g_feat)[0]
    junk = ((g_pids == q.pid) & (g_cams == q.camid)) | (g_pids == -1)
    order = torch.argsort(distances.masked_fill(junk, float("inf")), stable=True)[:top]
    plot_rank_list(q.path, [split.gallery[i].path for i in order],
                   [bool(g_pids[i] == q.pid) for i in order], out_png, top=top)
