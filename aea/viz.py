"""Pictures: attention maps, erased images, rank lists, parameter sweeps (PNG, written atomically).

Matplotlib is used through ``Figure`` objects only (the Agg renderer, no pyplot
and no global backend state).  Sizes are fixed in pixels so a picture's size is
known from its inputs: every image panel is ``PANEL_W x PANEL_H`` pixels at
``DPI``.  The rank list is composed pixel-exactly with Pillow (layout from
``rank_list_layout``) so border colours sit at known positions.

Images are uint8 arrays (H, W, 3) already de-normalised (``denormalize`` turns
ImageNet-normalised batches into those) or paths of image files.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from PIL import Image, ImageDraw, ImageFont

from aea.data.datasets import rgb_image
from aea.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from aea.errors import AEAError
from aea.io import atomic_path

DPI = 128
PANEL_W, PANEL_H = 128, 256          # pixels per image panel (the paper's 256x128 input)
SWEEP_W, SWEEP_H = 512, 384          # pixels per metric panel of a sweep plot

# rank list layout (pixels)
TILE_W, TILE_H = 64, 128
BORDER = 4
GAP = 6
QUERY_GAP = 24                       # extra space separating the query from its gallery
LABEL_H = 16
MARGIN = 8
QUERY_COLOUR = (30, 90, 220)
MATCH_COLOUR = (0, 190, 0)
MISMATCH_COLOUR = (220, 0, 0)
BACKGROUND = (255, 255, 255)
PARAM_LABELS = {"erase_ratio": "R: erased share of pixels (%)", "margin": "triplet margin m"}
METRIC_LABELS = {"rank1": "rank-1 (%)", "mAP": "mAP (%)", "mAP_noninterp": "mAP, non-interpolated (%)"}


def denormalize(images: np.ndarray, mean: Sequence[float] = IMAGENET_MEAN,
                std: Sequence[float] = IMAGENET_STD) -> np.ndarray:
    """(B, 3, H, W) normalised floats -> (B, H, W, 3) uint8."""
    images = np.asarray(images, dtype=np.float32)
    out = images * np.asarray(std, np.float32)[:, None, None] + np.asarray(mean, np.float32)[:, None, None]
    return (np.clip(out, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8).transpose(0, 2, 3, 1)


def _as_image(image: Any) -> np.ndarray:
    """A path or an (H, W[, 3]) uint8 array -> (H, W, 3) uint8."""
    if isinstance(image, (str, Path)):
        try:
            with Image.open(image) as im:
                return np.asarray(rgb_image(im, image))
        except OSError as exc:
            raise AEAError(f"cannot read image {image} ({exc}); check the path or the file") from None
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        raise ValueError(f"images must be uint8 (use denormalize), got {arr.dtype}")
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"images must be (H, W, 3), got shape {arr.shape}")
    return arr


def _resize_map(amap: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of a 2-D map to the image size, scaled to [0, 1] (the map's own min..max)."""
    amap = np.asarray(amap, dtype=np.float32)
    if amap.ndim != 2:
        raise ValueError(f"attention maps must be 2-D, got shape {amap.shape}")
    resized = np.asarray(Image.fromarray(amap, mode="F").resize((width, height), Image.BILINEAR))
    lo, hi = float(resized.min()), float(resized.max())
    return (resized - lo) / (hi - lo) if hi > lo else np.zeros_like(resized)


def _save_figure(fig: Figure, out_png: str | Path) -> None:
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)


def _image_grid(rows: Sequence[tuple[str, Sequence[np.ndarray], np.ndarray | None]], out_png: str | Path,
                alpha: float = 0.5) -> None:
    """One row per (label, images, maps|None); maps are drawn as a jet overlay on the images."""
    n = len(rows[0][1])
    fig = Figure(figsize=(n * PANEL_W / DPI, len(rows) * PANEL_H / DPI), dpi=DPI)
    axes = fig.subplots(len(rows), n, squeeze=False)
    fig.subplots_adjust(left=0.08, right=0.99, top=0.99, bottom=0.01, wspace=0.05, hspace=0.05)
    for i, (label, images, maps) in enumerate(rows):
        for j in range(n):
            ax = axes[i][j]
            img = images[j]
            ax.imshow(img, interpolation="nearest")
            if maps is not None:
                ax.imshow(_resize_map(maps[j], img.shape[0], img.shape[1]), cmap="jet", alpha=alpha,
                          vmin=0.0, vmax=1.0, interpolation="bilinear")
            ax.set_xticks([])
            ax.set_yticks([])
        axes[i][0].set_ylabel(label, fontsize=8)
    _save_figure(fig, out_png)


def plot_attention(images: Sequence[Any], attention_maps: Sequence[np.ndarray], out_png: str | Path,
                   alpha: float = 0.5, complementary_maps: Sequence[np.ndarray] | None = None) -> None:
    """Paper Fig. 3/5 style: the images (top row) and their attention as a heat-map overlay (bottom row);
    with ``complementary_maps``, the basic network's attention, then the complementary network's (third row).

    Size: ``len(images) * PANEL_W`` x ``2 * PANEL_H`` pixels (``3 * PANEL_H`` with the complementary row).
    """
    imgs = [_as_image(im) for im in images]
    extra = [] if complementary_maps is None else [("complementary", imgs, complementary_maps)]
    rows = [("attention" if not extra else "basic", imgs, attention_maps), *extra]
    if not imgs or any(len(maps) != len(imgs) for _, _, maps in rows):
        raise ValueError(f"need as many attention maps as images (>0), got {[len(m) for _, _, m in rows]} "
                         f"and {len(imgs)}")
    _image_grid([("image", imgs, None), *((label, ims, np.asarray(maps, dtype=np.float32))
                                          for label, ims, maps in rows)], out_png, alpha)


def plot_erasing(images: Sequence[Any], erased: Sequence[Any], out_png: str | Path) -> None:
    """Original images (top row) above their erased versions (bottom row); ``len * PANEL_W`` x ``2 * PANEL_H``."""
    originals, erased_imgs = [_as_image(im) for im in images], [_as_image(im) for im in erased]
    if not originals or len(originals) != len(erased_imgs):
        raise ValueError(f"need as many erased as original images (>0), got {len(erased_imgs)} and {len(originals)}")
    _image_grid([("original", originals, None), ("erased", erased_imgs, None)], out_png)


def rank_list_layout(n_gallery: int) -> tuple[tuple[int, int], list[tuple[int, int, int, int]]]:
    """Canvas (width, height) and the bordered tile boxes (x0, y0, x1, y1), exclusive end; box 0 = query."""
    boxes = []
    x, y = MARGIN, MARGIN + LABEL_H
    for i in range(n_gallery + 1):
        boxes.append((x, y, x + TILE_W + 2 * BORDER, y + TILE_H + 2 * BORDER))
        x += TILE_W + 2 * BORDER + (QUERY_GAP if i == 0 else GAP)
    width = x - (QUERY_GAP if n_gallery == 0 else GAP) + MARGIN
    return (width, y + TILE_H + 2 * BORDER + MARGIN), boxes


def plot_rank_list(query_path: Any, gallery_paths: Sequence[Any], is_match: Sequence[bool], out_png: str | Path,
                   top: int = 10) -> None:
    """The query (blue border) then its ``top`` ranked gallery images, green border = same identity, red = not.

    Images are resized to ``TILE_W x TILE_H``; pixel layout from ``rank_list_layout``.
    """
    if len(gallery_paths) != len(is_match):
        raise ValueError(f"is_match needs one flag per gallery image: {len(is_match)} vs {len(gallery_paths)}")
    gallery = list(gallery_paths)[:top]
    (width, height), boxes = rank_list_layout(len(gallery))
    canvas = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    items = [(query_path, QUERY_COLOUR, "query")]
    items += [(g, MATCH_COLOUR if m else MISMATCH_COLOUR, str(k + 1))
              for k, (g, m) in enumerate(zip(gallery, is_match))]
    for (image, colour, label), (x0, y0, x1, y1) in zip(items, boxes):
        draw.rectangle((x0, y0, x1 - 1, y1 - 1), fill=colour)
        tile = Image.fromarray(_as_image(image)).resize((TILE_W, TILE_H), Image.BILINEAR)
        canvas.paste(tile, (x0 + BORDER, y0 + BORDER))
        draw.text((x0, y0 - LABEL_H + 2), label, fill=(0, 0, 0), font=font)
    with atomic_path(out_png) as tmp:
        canvas.save(tmp, format="PNG")


def plot_sweep(df: Any, param: str, out_png: str | Path, *, paper: Any = None,
               labels: Mapping[str, str] | None = None, metrics: Sequence[str] = ("rank1", "mAP")) -> None:
    """Metric vs ``param`` per dataset, one panel per metric (paper Fig. 6/7).

    ``df``: tidy table with columns ``dataset, metric, mean, std`` and ``param``
    (numeric); error bars = std where defined.  ``paper`` (columns ``dataset,
    metric, value`` and ``param``): known paper values drawn as open markers.
    Size: ``len(metrics) * SWEEP_W`` x ``SWEEP_H`` pixels.
    """
    if param not in df.columns:
        raise ValueError(f"table has no column {param!r} to plot against")
    labels = labels or {}
    fig = Figure(figsize=(len(metrics) * SWEEP_W / DPI, SWEEP_H / DPI), dpi=DPI)
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    fig.subplots_adjust(left=0.08, right=0.98, top=0.9, bottom=0.14, wspace=0.25)
    datasets = list(dict.fromkeys(df["dataset"]))
    colours = {ds: f"C{i}" for i, ds in enumerate(datasets)}
    for ax, metric in zip(axes, metrics):
        sel = df[df["metric"] == metric]
        for ds in datasets:
            cur = sel[sel["dataset"] == ds].sort_values(param)
            if not len(cur):
                continue
            std = cur["std"].to_numpy(dtype=float) if "std" in cur else None
            yerr = None if std is None or np.isnan(std).all() else np.nan_to_num(std)
            ax.errorbar(cur[param].to_numpy(float), cur["mean"].to_numpy(float), yerr=yerr, marker="o",
                        markersize=4, capsize=2, color=colours[ds], label=labels.get(ds, ds))
            if paper is not None and len(paper):
                known = paper[(paper["dataset"] == ds) & (paper["metric"] == metric) & paper["value"].notna()]
                if len(known):
                    ax.plot(known[param].to_numpy(float), known["value"].to_numpy(float), linestyle="none",
                            marker="s", markerfacecolor="none", color=colours[ds])
        ax.set_xlabel(PARAM_LABELS.get(param, param), fontsize=8)
        ax.set_title(METRIC_LABELS.get(metric, metric), fontsize=9)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        if ax is axes[0] and ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    _save_figure(fig, out_png)
