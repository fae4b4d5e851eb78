"""Checks of the mechanism experiment (docs/mechanism.md): C1-C3 and the attention overlap.

Pure functions of arrays: identity codes (identities x regions) for C1/C2,
boolean attention masks and integer part-label maps for C3 and the IoU.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

REGIONS = ("head", "upper", "lower", "shoes", "item")
# part-label ids of the generator's sidecar maps
LABELS = ("background", "head", "upper", "lower", "shoes", "item", "occluder")
SALIENT_REGION = "upper"

C1_HIDE_ONE_MIN = 0.95
C1_HIDE_TWO_MIN = 0.80
C2_MIN = 0.95


def unique_share(codes: ArrayLike, visible: Sequence[int]) -> float:
    """Share of identities (rows) whose code on the ``visible`` columns no other identity has.

    With no visible column every identity looks the same, so only a lone identity is unique.
    """
    codes = np.asarray(codes)
    if codes.ndim != 2 or len(codes) == 0:
        raise ValueError(f"codes must be a non-empty identities x regions array, got shape {codes.shape}")
    projected = codes[:, list(visible)]
    if projected.shape[1] == 0:
        return float(len(codes) == 1)
    _, inverse, counts = np.unique(projected, axis=0, return_inverse=True, return_counts=True)
    return float(np.mean(counts[inverse.reshape(-1)] == 1))


def hidden_region_uniqueness(codes: ArrayLike, hidden: Sequence[int]) -> float:
    """Share of identities still unique when the regions (columns) in ``hidden`` cannot be seen."""
    num_regions = np.asarray(codes).shape[1]
    return unique_share(codes, [r for r in range(num_regions) if r not in set(hidden)])


def constraint_report(codes: ArrayLike, salient: int = REGIONS.index(SALIENT_REGION),
                      names: Sequence[str] = REGIONS) -> dict:
    """C1 and C2 of a set of identity codes, every measured value, and whether each passes.

    C1: hiding any one region leaves >= 95% unique, any two >= 80%.  C2: the
    regions other than ``salient`` leave >= 95% unique.  Also the uniqueness by
    the salient region alone (the single-cue variant needs it to be 1).
    """
    codes = np.asarray(codes)
    regions = range(codes.shape[1])
    one = {names[r]: hidden_region_uniqueness(codes, [r]) for r in regions}
    two = {f"{names[a]}+{names[b]}": hidden_region_uniqueness(codes, [a, b])
           for a, b in itertools.combinations(regions, 2)}
    c1_one, c1_two = min(one.values()), min(two.values())
    c2 = one[names[salient]]
    return {
        "c1_hide_one": one, "c1_hide_two": two, "c1_min_hide_one": c1_one, "c1_min_hide_two": c1_two,
        "c1_passes": bool(c1_one >= C1_HIDE_ONE_MIN and c1_two >= C1_HIDE_TWO_MIN),
        "c2": c2, "c2_passes": bool(c2 >= C2_MIN),
        "salient_alone": unique_share(codes, [salient]),
    }


def _check_masks(masks: np.ndarray, labels: np.ndarray | None = None) -> None:
    if masks.ndim != 3 or masks.dtype != bool:
        raise ValueError(f"masks must be a boolean (images, height, width) array, got {masks.dtype} {masks.shape}")
    if labels is not None and labels.shape != masks.shape:
        raise ValueError(f"label maps of shape {labels.shape} do not match masks of shape {masks.shape}; "
                         "resize the labels to the attention size (nearest neighbour) first")


def attention_share_per_part(masks: ArrayLike, labels: ArrayLike, num_labels: int = len(LABELS)) -> np.ndarray:
    """C3: the share of all selected (top-R%) pixels of a batch that lie on each part label.

    ``masks``: boolean (N, H, W); ``labels``: integer (N, H, W) part ids in
    [0, num_labels).  Pixels are pooled over the batch, so each image weighs by
    its selected-pixel count (equal for a fixed R).  Returns (num_labels,)
    summing to 1; all zeros when nothing is selected.
    """
    masks, labels = np.asarray(masks), np.asarray(labels)
    _check_masks(masks, labels)
    if labels.size and (labels.min() < 0 or labels.max() >= num_labels):
        raise ValueError(f"part labels must lie in [0, {num_labels})")
    counts = np.bincount(labels[masks].astype(np.int64), minlength=num_labels).astype(np.float64)
    total = counts.sum()
    return counts / total if total else counts


def region_coverage(masks: ArrayLike, labels: ArrayLike, label: int) -> float:
    """Share of the pixels labelled ``label`` that the masks select, pooled over the batch (generator version 3's
    calibration: how much of the upper body Baseline 1's top-R% erasing mask covers); NaN without such a pixel.

    ``masks``: boolean (N, H, W); ``labels``: integer (N, H, W) part ids at the masks' size.
    """
    masks, labels = np.asarray(masks), np.asarray(labels)
    _check_masks(masks, labels)
    region = labels == label
    total = int(region.sum())
    return float((masks & region).sum() / total) if total else float("nan")


def mask_iou(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    """Per-image intersection over union of two boolean (N, H, W) mask batches; two empty masks give 1."""
    a, b = np.asarray(a), np.asarray(b)
    _check_masks(a)
    _check_masks(b)
    if a.shape != b.shape:
        raise ValueError(f"mask batches differ in shape: {a.shape} vs {b.shape}")
    inter = (a & b).sum(axis=(1, 2)).astype(np.float64)
    union = (a | b).sum(axis=(1, 2)).astype(np.float64)
    return np.divide(inter, union, out=np.ones_like(inter), where=union > 0)
