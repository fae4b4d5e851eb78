"""Batch-hard triplet loss (Hermans et al. 2017) on L2-normalised features.

The identity losses are plain ``torch.nn.functional.cross_entropy`` on the
networks' logits; nothing of them lives here.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

_EPS = 1e-12


def pairwise_distances(features: torch.Tensor) -> torch.Tensor:
    """Euclidean distances (B, B) between rows, with a gradient-safe square root.

    The squared distance ``|a|^2 + |b|^2 - 2 a.b`` can come out slightly
    negative or exactly zero (the diagonal); clamping at 1e-12 before the sqrt
    keeps both the value and the gradient finite there.
    """
    sq = features.pow(2).sum(dim=1)
    d2 = sq[:, None] + sq[None, :] - 2.0 * features @ features.t()
    return d2.clamp(min=_EPS).sqrt()


def batch_hard_triplet(features: torch.Tensor, pids: torch.Tensor, margin: float) -> torch.Tensor:
    """Mean over anchors of ``relu(max d(a, p) - min d(a, n) + margin)`` on L2-normalised ``features``.

    Hardest positive: farthest sample with the anchor's pid, the anchor itself
    excluded. Hardest negative: nearest sample with another pid. Anchors that
    have no positive or no negative in the batch (impossible with P x K
    sampling, K >= 2, P >= 2) are left out of the mean; with none left the loss
    is a zero connected to the graph.
    """
    if features.dtype in (torch.float16, torch.bfloat16):  # autocast output: distances in float32
        features = features.float()
    feats = F.normalize(features, dim=1)
    dist = pairwise_distances(feats)
    same = pids[:, None] == pids[None, :]
    eye = torch.eye(len(pids), dtype=torch.bool, device=pids.device)
    positive = same & ~eye
    negative = ~same
    hardest_pos = dist.masked_fill(~positive, float("-inf")).max(dim=1).values
    hardest_neg = dist.masked_fill(~negative, float("inf")).min(dim=1).values
    valid = positive.any(dim=1) & negative.any(dim=1)
    if not valid.any():
        return feats.sum() * 0.0
    return F.relu(hardest_pos[valid] - hardest_neg[valid] + margin).mean()
