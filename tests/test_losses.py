"""Batch-hard triplet loss: a hand-computed batch, a brute-force loop, and the edge cases."""

from __future__ import annotations

import math

import pytest
import torch

from aea.losses import batch_hard_triplet, pairwise_distances


def test_hand_computed_batch():
    # Unit vectors after normalisation: x0=(1,0) x1=(0,1) [pid 0], x2=(-1,0) x3=(3,4)/5=(0.6,0.8) [pid 1].
    # Squared distances |a-b|^2:
    #   d01: 1+1 = 2            d02: 4                  d03: 0.4^2+0.8^2 = 0.8
    #   d12: 1+1 = 2            d13: 0.6^2+0.2^2 = 0.4  d23: 1.6^2+0.8^2 = 3.2
    # Anchor 0: pos d01=sqrt2, neg min(d02=2, d03=sqrt0.8)=sqrt0.8 -> sqrt2 - sqrt0.8 + 0.3 = 0.81979
    # Anchor 1: pos d10=sqrt2, neg min(d12=sqrt2, d13=sqrt0.4)=sqrt0.4 -> sqrt2 - sqrt0.4 + 0.3 = 1.08175
    # Anchor 2: pos d23=sqrt3.2, neg min(d20=2, d21=sqrt2)=sqrt2 -> sqrt3.2 - sqrt2 + 0.3 = 0.67464
    # Anchor 3: pos d32=sqrt3.2, neg min(d30=sqrt0.8, d31=sqrt0.4)=sqrt0.4 -> sqrt3.2 - sqrt0.4 + 0.3 = 1.45639
    # Mean = (0.81979 + 1.08175 + 0.67464 + 1.45639) / 4 = 1.00814
    feats = torch.tensor([[2.0, 0.0], [0.0, 0.5], [-1.0, 0.0], [3.0, 4.0]])  # scales are removed inside
    pids = torch.tensor([0, 0, 1, 1])
    s = math.sqrt
    expected = (s(2) - s(0.8) + s(2) - s(0.4) + s(3.2) - s(2) + s(3.2) - s(0.4) + 4 * 0.3) / 4
    assert expected == pytest.approx(1.00814, abs=1e-5)
    assert batch_hard_triplet(feats, pids, 0.3).item() == pytest.approx(expected, abs=1e-6)
    # margin 0: anchor 2 still violates (sqrt3.2 > sqrt2), all four do -> mean drops by exactly 0.3
    assert batch_hard_triplet(feats, pids, 0.0).item() == pytest.approx(expected - 0.3, abs=1e-6)


def test_separated_clusters_give_zero_and_hinge_clips():
    # pid 0 at angle ~0, pid 1 at angle ~pi: positives ~0.02 apart, negatives ~2 apart.
    feats = torch.tensor([[1.0, 0.01], [1.0, -0.01], [-1.0, 0.01], [-1.0, -0.01]])
    pids = torch.tensor([3, 3, 8, 8])
    assert batch_hard_triplet(feats, pids, 0.3).item() == 0.0


def _brute_force(features, pids, margin):
    f = features / features.norm(dim=1, keepdim=True)
    losses = []
    for a in range(len(pids)):
        pos = [torch.dist(f[a], f[p]) for p in range(len(pids)) if p != a and pids[p] == pids[a]]
        neg = [torch.dist(f[a], f[n]) for n in range(len(pids)) if pids[n] != pids[a]]
        losses.append(torch.clamp(max(pos) - min(neg) + margin, min=0))
    return torch.stack(losses).mean()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_brute_force_value_and_gradient(seed):
    g = torch.Generator().manual_seed(seed)
    pids = torch.arange(6).repeat_interleave(4)[torch.randperm(24, generator=g)]  # P=6, K=4, shuffled
    feats = torch.randn(24, 16, generator=g, dtype=torch.float64)
    a = feats.clone().requires_grad_(True)
    b = feats.clone().requires_grad_(True)
    fast = batch_hard_triplet(a, pids, 0.3)
    slow = _brute_force(b, pids, 0.3)
    fast.backward()
    slow.backward()
    assert fast.item() == pytest.approx(slow.item(), rel=1e-9)
    torch.testing.assert_close(a.grad, b.grad, rtol=1e-6, atol=1e-9)


def test_distance_is_safe_at_zero():
    x = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], requires_grad=True)
    d = pairwise_distances(x)
    assert d[0, 1].item() == pytest.approx(1e-6, abs=1e-6)  # sqrt of the 1e-12 clamp
    d.sum().backward()
    assert torch.isfinite(x.grad).all()
    # identical positives: the loss is finite and its gradient too
    feats = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]], requires_grad=True)
    batch_hard_triplet(feats, torch.tensor([0, 0, 1, 1]), 0.3).backward()
    assert torch.isfinite(feats.grad).all()


def test_half_precision_features_give_float32_loss():
    feats = torch.randn(8, 4, generator=torch.Generator().manual_seed(0))
    pids = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    half = batch_hard_triplet(feats.to(torch.bfloat16), pids, 0.3)
    assert half.dtype == torch.float32
    assert half.item() == pytest.approx(batch_hard_triplet(feats, pids, 0.3).item(), abs=0.02)


def test_anchors_without_positive_are_skipped():
    feats = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]], requires_grad=True)
    pids = torch.tensor([0, 1, 1])  # anchor 0 has no positive
    # anchor 1: pos d12 = sqrt0.4, neg d10 = sqrt2 -> 0
    # anchor 2: pos d21 = sqrt0.4, neg d20 = sqrt0.8 -> sqrt0.4 - sqrt0.8 + 0.3 = 0.0379
    expected = (0 + max(0.0, math.sqrt(0.4) - math.sqrt(0.8) + 0.3)) / 2
    assert batch_hard_triplet(feats, pids, 0.3).item() == pytest.approx(expected, abs=1e-6)
    single = batch_hard_triplet(feats, torch.tensor([0, 0, 0]), 0.3)  # no negatives at all
    assert single.item() == 0.0 and single.requires_grad
