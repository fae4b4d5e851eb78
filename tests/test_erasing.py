"""Erasing strategies: exact fractions, locations, lookups, AOS window choice, REDA statistics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from aea.erasing import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    BudgetRectangleErasing,
    EraseInput,
    GrayErasing,
    IdentityErasing,
    MaskBank,
    RandomErasing,
    SalientErasing,
    StaticMaskErasing,
    adversarial_occlusion_masks,
    aos_geometry,
    budget_rectangle,
    build_erasing,
    occlusion_windows,
    static_salient_masks,
)
from aea.errors import AEAError
from kernels.reference import attention_erase_reference

MEAN = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
STD = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)


def normalise(rgb: torch.Tensor) -> torch.Tensor:
    return (rgb - MEAN) / STD


# --------------------------------------------------------------------------- salient


def test_salient_erases_exactly_k_pixels_and_matches_reference():
    g = torch.Generator().manual_seed(0)
    features = torch.randn(4, 16, 16, 8, generator=g)  # a conv2-like map of a 64x32 input
    images = torch.randn(4, 3, 64, 32, generator=g)
    strategy = SalientErasing(10, fill=(1.0, 2.0, 3.0), backend="reference")
    erased, mask = strategy.erase(EraseInput(images, features=features))
    # k = round(0.10 * 64 * 32) = round(204.8) = 205 on tie-free (continuous random) maps
    assert mask.dtype == torch.bool and mask.shape == (4, 64, 32)
    assert mask.flatten(1).sum(1).tolist() == [205] * 4
    ref_erased, ref_mask = attention_erase_reference(features, images, 10, (1.0, 2.0, 3.0))
    assert torch.equal(mask, ref_mask) and torch.equal(erased, ref_erased)
    assert torch.equal(erased[:, 1][mask], torch.full((4 * 205,), 2.0))
    assert torch.equal(erased.permute(1, 0, 2, 3)[:, ~mask], images.permute(1, 0, 2, 3)[:, ~mask])
    assert strategy.tap == "conv2" and SalientErasing(20, layer="conv1").tap == "conv1"
    with pytest.raises(ValueError, match="features"):
        strategy.erase(EraseInput(images))


def test_bad_ratio_is_a_user_error():
    for ratio in (0, 100, -5):
        with pytest.raises(AEAError, match="outside"):
            build_erasing("salient", ratio=ratio)


def test_kernel_refusals_reach_the_user_as_aea_errors():
    """``kernels`` raises its own EraseError; every strategy call turns it into the one-line AEAError."""
    batch = EraseInput(torch.zeros(2, 3, 8, 4), features=torch.ones(2, 4, 4, 2))
    with pytest.raises(AEAError, match="one value or one per channel"):
        SalientErasing(10, fill=(1.0, 2.0), backend="reference").erase(batch)
    with pytest.raises(AEAError, match="unknown erase backend 'cuda'"):
        SalientErasing(10, backend="cuda").erase(batch)
    with pytest.raises(AEAError, match="one value or one per channel"):
        GrayErasing(10, fill=(1.0, 2.0)).erase(batch)


# --------------------------------------------------------------------------- gray


def test_gray_erases_the_brightest_region():
    g = torch.Generator().manual_seed(0)
    rgb = torch.rand(2, 3, 20, 10, generator=g) * 0.3  # dark, tie-free background
    rgb[0, :, 5:10, 2:6] = 0.8 + 0.2 * torch.rand(3, 5, 4, generator=g)  # 20 px = 10 % of 200
    rgb[1, :, 14:19, 5:9] = 0.8 + 0.2 * torch.rand(3, 5, 4, generator=g)
    erased, mask = GrayErasing(10, fill=0.0).erase(EraseInput(normalise(rgb)))
    expected = torch.zeros(2, 20, 10, dtype=torch.bool)
    expected[0, 5:10, 2:6] = True
    expected[1, 14:19, 5:9] = True
    assert torch.equal(mask, expected)
    assert torch.equal(erased.permute(1, 0, 2, 3)[:, mask], torch.zeros(3, 40))


def test_gray_uses_601_luma_and_commutes_with_flip():
    # pure green (luma 0.587) is brighter than pure red (0.299) and pure blue (0.114)
    rgb = torch.zeros(1, 3, 1, 10)
    rgb[0, 0, 0, 0] = 1.0  # red
    rgb[0, 1, 0, 1] = 1.0  # green
    rgb[0, 2, 0, 2] = 1.0  # blue
    rgb[0, :, 0, 3:] = torch.linspace(0.01, 0.07, 7)  # grey ramp, luma below 0.114
    _, mask = GrayErasing(10).erase(EraseInput(normalise(rgb)))  # k = round(1.0) = 1 pixel
    assert mask[0, 0].nonzero().flatten().tolist() == [1]
    _, mask = GrayErasing(30).erase(EraseInput(normalise(rgb)))  # k = 3: green, red, blue
    assert mask[0, 0].nonzero().flatten().tolist() == [0, 1, 2]

    images = torch.randn(3, 3, 32, 16, generator=torch.Generator().manual_seed(1))
    strategy = GrayErasing(15)
    _, plain = strategy.erase(EraseInput(images))
    _, flipped = strategy.erase(EraseInput(images.flip(-1)))
    assert torch.equal(flipped, plain.flip(-1))  # per-batch == once-before-training, then flipped


# --------------------------------------------------------------------------- static


def _bank(n=4, h=5, w=3, seed=0):
    masks = torch.rand(n, h, w, generator=torch.Generator().manual_seed(seed)) > 0.5
    return masks, MaskBank.from_masks(masks)


def test_static_masks_looked_up_by_index_and_flipped(tmp_path):
    masks, bank = _bank()
    assert bank.bits.shape == (4, 2) and bank.bits.dtype == np.uint8  # ceil(15 / 8) = 2 bytes
    path = tmp_path / "masks.npz"
    bank.save(path)
    strategy = build_erasing("static-salient", masks=path, fill=(7.0, 8.0, 9.0))
    images = torch.randn(3, 3, 5, 3)
    batch = EraseInput(images, indices=torch.tensor([2, 0, 3]), flipped=torch.tensor([False, True, False]))
    erased, mask = strategy.erase(batch)
    assert torch.equal(mask[0], masks[2])
    assert torch.equal(mask[1], masks[0].flip(-1))
    assert torch.equal(mask[2], masks[3])
    assert torch.equal(erased[:, 2][mask], torch.full((int(mask.sum()),), 9.0))
    assert torch.equal(erased[:, 0][~mask], images[:, 0][~mask])
    _, unflipped = strategy.erase(EraseInput(images, indices=torch.tensor([0, 0, 0])))
    assert torch.equal(unflipped, masks[[0, 0, 0]])
    strategy.save(tmp_path / "again.npz")
    reloaded = StaticMaskErasing.load(tmp_path / "again.npz", fill=0.0)
    assert torch.equal(reloaded.masks.lookup(torch.arange(4)), masks) and reloaded.fill == 0.0


def test_static_mask_errors(tmp_path):
    _, bank = _bank()
    strategy = StaticMaskErasing(bank)
    with pytest.raises(AEAError, match="outside the 4 precomputed masks"):
        strategy.erase(EraseInput(torch.zeros(1, 3, 5, 3), indices=torch.tensor([4])))
    with pytest.raises(AEAError, match="recompute the masks at this input size"):
        strategy.erase(EraseInput(torch.zeros(1, 3, 6, 3), indices=torch.tensor([0])))
    with pytest.raises(ValueError, match="indices"):
        strategy.erase(EraseInput(torch.zeros(1, 3, 5, 3)))
    (tmp_path / "bad.npz").write_bytes(b"junk")
    with pytest.raises(AEAError, match="cannot read mask file"):
        MaskBank.load(tmp_path / "bad.npz")
    assert not list(tmp_path.glob(".*.tmp"))


def _batches(images, pids, order, size=3):
    for start in range(0, len(order), size):
        idx = torch.tensor(order[start : start + size])
        flipped = torch.zeros(len(idx), dtype=torch.bool)
        yield {"images": images[idx], "pids": pids[idx], "indices": idx, "flipped": flipped}


def test_static_salient_masks_follow_reference_semantics():
    images = torch.randn(7, 3, 16, 8, generator=torch.Generator().manual_seed(0))
    pids = torch.zeros(7, dtype=torch.long)
    def feature_fn(x: torch.Tensor) -> torch.Tensor:
        return x[:, :, ::2, ::2] * 2  # a half-resolution "layer"

    bank = static_salient_masks(feature_fn, _batches(images, pids, [4, 1, 6, 0, 2, 5, 3]), 20, (16, 8))
    _, expected = attention_erase_reference(feature_fn(images), images, 20)
    assert len(bank) == 7
    assert torch.equal(bank.lookup(torch.arange(7)), expected)
    with pytest.raises(AEAError, match="missing e.g. \\[3\\]"):
        static_salient_masks(feature_fn, _batches(images, pids, [0, 1, 2, 4, 5, 6]), 20, (16, 8))
    flipped = [dict(b, flipped=torch.ones(len(b["indices"]), dtype=torch.bool)) for b in _batches(images, pids, [0, 1])]
    with pytest.raises(AEAError, match="un-flipped"):
        static_salient_masks(feature_fn, flipped, 20, (16, 8))


# --------------------------------------------------------------------------- AOS


def test_aos_default_geometry_is_the_official_one():
    assert aos_geometry((256, 128)) == ((57, 57), (10, 10))  # int(sqrt(0.1 * 32768)) = 57
    assert len(occlusion_windows((256, 128), (57, 57), (10, 10))) == 20 * 8  # tops 0..190, lefts 0..70
    assert aos_geometry((64, 32)) == ((14, 14), (3, 3))  # stride 10 * 64/256 = 2.5 -> 3


def test_aos_picks_the_window_covering_the_decisive_region():
    region = (slice(13, 17), slice(6, 10))  # rows 13..16, cols 6..9 of a 32x16 image
    calls = []

    def prob_fn(images, pids):
        calls.append(len(images))
        visible = (images[:, :, region[0], region[1]] != 0).float().mean(dim=(1, 2, 3))
        p0 = 0.05 + 0.9 * visible  # class 0 needs the region; class 1 is the complement
        return torch.stack([p0, 1 - p0], dim=1).gather(1, pids[:, None])[:, 0]

    images = torch.rand(5, 3, 32, 16, generator=torch.Generator().manual_seed(0)) + 0.5  # no zeros before occlusion
    pids = torch.tensor([0, 0, 1, 0, 0])
    batches = _batches(images, pids, [3, 0, 4, 1, 2])
    bank = adversarial_occlusion_masks(prob_fn, batches, (8, 8), (4, 4), max_batch=7)
    masks = bank.lookup(torch.arange(5))
    assert max(calls) == 7 and sum(calls) == 5 * 7 * 3  # tops 0..24 (7) x lefts 0..8 (3) = 21 windows per image
    for i in (0, 1, 3, 4):  # pid 0: the window hides the whole region
        assert masks[i][region].all() and masks[i].sum() == 64
        rows, cols = masks[i].nonzero().unbind(1)
        assert rows.min() % 4 == 0 and cols.min() % 4 == 0  # a grid position
    # pid 1: hiding the region raises p1, so the kept window avoids it entirely; first such window is (0, 0)
    expected = torch.zeros(32, 16, dtype=torch.bool)
    expected[0:8, 0:8] = True
    assert torch.equal(masks[2], expected)


# --------------------------------------------------------------------------- REDA


def _simulate_reda(n, height, width, rng):
    """Independent numpy model of the accept/reject draw: expected area fraction and mean h/w of erased rectangles."""
    area = rng.uniform(0.02, 0.4, (n, 100)) * height * width
    ratio = rng.uniform(0.3, 1 / 0.3, (n, 100))
    h, w = np.round(np.sqrt(area * ratio)), np.round(np.sqrt(area / ratio))
    first = ((h < height) & (w < width)).argmax(axis=1)
    h, w = h[np.arange(n), first], w[np.arange(n), first]
    return (h * w / (height * width)).mean(), (h / w).mean()


def test_reda_statistics():
    height, width, draws = 256, 128, 2000
    strategy = RandomErasing(mean=(0.0,), std=(1.0,))  # one channel keeps the batch small
    g = torch.Generator().manual_seed(0)
    boxes = []
    for _ in range(draws // 250):
        _, mask = strategy.erase(EraseInput(torch.zeros(250, 1, height, width), generator=g))
        for m in mask:
            if m.any():
                rows, cols = m.nonzero().unbind(1)
                h, w = int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)
                assert m.sum() == h * w  # one solid rectangle
                boxes.append((h, w))
    # erase probability 0.5: binomial sd = sqrt(2000 * 0.25) = 22.4; allow 4 sd
    assert abs(len(boxes) - draws / 2) < 4 * math.sqrt(draws * 0.25)
    h, w = np.array(boxes, dtype=float).T
    frac = h * w / (height * width)
    # rounding h and w moves the area by at most 0.5 * (h + w) + 0.25 pixels (< 0.003 of the image here)
    assert frac.min() >= 0.02 - 0.003 and frac.max() <= 0.4 + 0.003
    ratio = h / w
    assert ratio.min() >= 0.3 * 0.85 and ratio.max() <= (1 / 0.3) * 1.15  # rounding of sides >= 7 px
    expected_frac, expected_ratio = _simulate_reda(200_000, height, width, np.random.default_rng(0))
    assert 0.19 < expected_frac < 0.21  # U(0.02, 0.4) has mean 0.21; rejection of large tall boxes lowers it
    assert abs(frac.mean() - expected_frac) < 0.012  # sd of the area fraction ~0.11: ~3.5 standard errors
    assert abs(ratio.mean() - expected_ratio) < 0.1  # sd of h/w ~0.85: ~3.7 standard errors


def test_reda_fill_values_determinism_and_no_global_rng():
    images = torch.randn(64, 3, 64, 32, generator=torch.Generator().manual_seed(5))
    strategy = build_erasing("random", p=1.0)
    state = torch.get_rng_state()
    erased, mask = strategy.erase(EraseInput(images, generator=torch.Generator().manual_seed(3)))
    assert torch.equal(torch.get_rng_state(), state)  # the global generator was not touched
    assert mask.flatten(1).any(1).all()  # p = 1: every image erased
    again, mask2 = strategy.erase(EraseInput(images, generator=torch.Generator().manual_seed(3)))
    assert torch.equal(again, erased) and torch.equal(mask2, mask)
    _, other = strategy.erase(EraseInput(images, generator=torch.Generator().manual_seed(4)))
    assert not torch.equal(other, mask)
    rgb = (erased * STD + MEAN).permute(1, 0, 2, 3)[:, mask]  # (3, erased pixels) in [0, 1] RGB
    assert rgb.min() >= -1e-6 and rgb.max() <= 1 + 1e-6
    for channel in rgb:  # U(0, 1) per pixel and channel: mean 0.5, sd 0.289
        assert abs(channel.mean().item() - 0.5) < 0.02 and abs(channel.std().item() - 0.2887) < 0.02
    assert not torch.equal(rgb[0], rgb[1])  # channels drawn independently
    assert torch.equal(erased.permute(1, 0, 2, 3)[:, ~mask], images.permute(1, 0, 2, 3)[:, ~mask])
    never = build_erasing("random", p=0.0)
    untouched, none = never.erase(EraseInput(images, generator=torch.Generator().manual_seed(3)))
    assert not none.any() and torch.equal(untouched, images)
    with pytest.raises(ValueError, match="generator"):
        strategy.erase(EraseInput(images))


# --------------------------------------------------------------------------- factory


def test_factory_names_and_errors():
    _, bank = _bank()
    assert isinstance(build_erasing("gray", ratio=10), GrayErasing)
    assert isinstance(build_erasing("occlusion", masks=bank), StaticMaskErasing)
    assert isinstance(build_erasing("static-salient", masks=bank), StaticMaskErasing)
    assert isinstance(build_erasing("random"), RandomErasing)
    with pytest.raises(AEAError, match="choose one of salient, gray"):
        build_erasing("cutout")
    with pytest.raises(AEAError, match="bad arguments"):
        build_erasing("gray", ratio=10, layer="conv2")
    with pytest.raises(AEAError, match="area"):
        RandomErasing(area=(0.5, 0.2))


# --------------------------------------------------------------------------- mechanism controls


@pytest.mark.parametrize("height, width, count, aspect, expected", [
    (64, 32, 307, 1.0, (18, 17, 1)),      # round(sqrt(307)) = 18: 18 x 17 = 306, one pixel of an 18th column
    (64, 32, 307, 3.0, (30, 10, 7)),      # round(sqrt(921)) = 30: 30 x 10 + 7
    (64, 32, 307, 0.3, (10, 30, 7)),      # round(sqrt(92.1)) = 10: ceil(307 / 32) = 10 fits the width
    (64, 32, 307, 0.1, (10, 30, 7)),      # too flat for 32 columns: h raised to ceil(307 / 32) = 10
    (8, 8, 60, 50.0, (8, 7, 4)),          # too tall: h capped at the image height
    (64, 32, 300, 1.0, (17, 17, 11)),
])
def test_budget_rectangle_by_hand(height, width, count, aspect, expected):
    h, w, extra = budget_rectangle(height, width, count, aspect)
    assert (h, w, extra) == expected
    assert h * w + extra == count and extra < h and w + (extra > 0) <= width and h <= height


@pytest.mark.parametrize("ratio, height, width", [(15, 64, 32), (10, 64, 32), (20, 256, 128), (5, 9, 7)])
def test_budget_erasing_erases_exactly_aeas_pixel_count(ratio, height, width):
    """Every image loses exactly num_erased(R, H*W) pixels (AEA's top-R % count): R % within one pixel's rounding,
    as one block (a rectangle plus a partial column), filled with the fill value; the rest is untouched."""
    images = torch.randn(16, 3, height, width)
    generator = torch.Generator().manual_seed(3)
    erased, mask = BudgetRectangleErasing(ratio, fill=0.25).erase(EraseInput(images, generator=generator))
    count = round(ratio / 100 * height * width)
    assert mask.shape == (16, height, width) and mask.dtype == torch.bool
    assert mask.flatten(1).sum(1).tolist() == [count] * 16
    assert abs(mask.flatten(1).float().mean(1) - ratio / 100).max() <= 0.5 / (height * width)
    assert torch.all(erased.permute(1, 0, 2, 3)[:, mask] == 0.25)
    assert torch.equal(erased.permute(1, 0, 2, 3)[:, ~mask], images.permute(1, 0, 2, 3)[:, ~mask])
    for m in mask:  # one block: its rows and columns are contiguous, full columns but possibly the last one
        rows, cols = m.any(1).nonzero()[:, 0], m.any(0).nonzero()[:, 0]
        assert rows.tolist() == list(range(rows[0], rows[-1] + 1))
        assert cols.tolist() == list(range(cols[0], cols[-1] + 1))
        assert m[:, cols[:-1]].sum(0).tolist() == [len(rows)] * (len(cols) - 1)


def test_budget_erasing_positions_are_seeded_and_spread():
    images = torch.zeros(256, 3, 64, 32)

    def masks(seed):
        return BudgetRectangleErasing(15).erase(EraseInput(images, generator=torch.Generator().manual_seed(seed)))[1]

    a = masks(0)
    assert torch.equal(a, masks(0)) and not torch.equal(a, masks(1))
    # uniform positions: every row and column is erased in some image, the centre of mass near the image centre
    coverage = a.float().mean(0)
    assert bool((coverage.sum(1) > 0).all()) and bool((coverage.sum(0) > 0).all())
    rows = (coverage.sum(1) * torch.arange(64)).sum() / coverage.sum()
    cols = (coverage.sum(0) * torch.arange(32)).sum() / coverage.sum()
    assert abs(rows.item() - 31.5) < 3 and abs(cols.item() - 15.5) < 2
    heights = a.any(2).sum(1).float()  # aspect drawn in 0.3-3.33: tall and flat blocks both occur
    assert heights.min() <= 12 and heights.max() >= 28


def test_budget_erasing_refuses_bad_input():
    with pytest.raises(AEAError, match="outside"):
        BudgetRectangleErasing(0)
    with pytest.raises(AEAError, match="aspect"):
        BudgetRectangleErasing(15, aspect=(2.0, 1.0))
    with pytest.raises(ValueError, match="generator"):
        BudgetRectangleErasing(15).erase(EraseInput(torch.zeros(1, 3, 8, 8)))


def test_identity_erasing_feeds_the_originals():
    images = torch.randn(4, 3, 16, 8)
    erased, mask = build_erasing("identity").erase(EraseInput(images))
    assert torch.equal(erased, images) and mask.shape == (4, 16, 8) and not bool(mask.any())
    assert isinstance(build_erasing("random-budget", ratio=15), BudgetRectangleErasing)
    assert isinstance(build_erasing("identity"), IdentityErasing)
