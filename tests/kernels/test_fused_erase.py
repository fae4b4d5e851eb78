"""The fused Triton erase against ``kernels.reference`` (interpreter on CPU, compiled on a GPU)."""

from __future__ import annotations

import pytest
import torch

import kernels
from kernels import EraseError
from kernels.fused_erase import (
    MAX_MASK_DISAGREEMENT,
    attention_erase_triton,
    bytes_moved,
    erase_with_threshold,
    launch_config,
)
from kernels.reference import attention_erase_reference, attention_map, num_erased, resize_map

FILL = (0.5, -1.0, 2.0)


def integer_features(B: int, C: int, h: int, w: int, dtype: torch.dtype, seed: int) -> torch.Tensor:
    """Small-integer activations, so every channel sum is exact in any order.

    Image b % 3 == 0: independent values; 1: all zero (every pixel ties at 0); 2: values constant over
    blocks of the low-res map (plateaus in the resized map, so many pixels tie at the threshold).
    """
    g = torch.Generator().manual_seed(seed)
    f = torch.randint(-3, 4, (B, C, h, w), generator=g).float()
    for b in range(B):
        if b % 3 == 1:
            f[b] = 0
        elif b % 3 == 2:
            by, bx = max(1, h // 4), max(1, w // 4)
            coarse = torch.randint(-2, 3, (C, -(-h // by), -(-w // bx)), generator=g).float()
            f[b] = coarse.repeat_interleave(by, 1).repeat_interleave(bx, 2)[:, :h, :w]
    return f.to(dtype)


def images_like(B: int, H: int, W: int, seed: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, 3, H, W, generator=g).to(dtype)


def kth_largest(features: torch.Tensor, size: tuple[int, int], ratio: float) -> torch.Tensor:
    scores = resize_map(attention_map(features), size).flatten(1)
    return scores.topk(num_erased(ratio, scores.shape[1]), dim=1).values[:, -1]


def run(features, images, ratio, fill, device):
    erased, mask, threshold = erase_with_threshold(features.to(device), images.to(device), ratio, fill)
    return erased.cpu(), mask.cpu(), threshold.cpu()


# (B, C, h, w, H, W, R, feature dtype): power-of-two ratios (or none), so the reference is exact too.
EXACT_CASES = [
    (3, 16, 16, 8, 64, 32, 20.0, torch.float32),  # smoke size; H + W <= 128: ATen's channels-last order
    (3, 8, 8, 4, 32, 16, 10.0, torch.bfloat16),
    (2, 32, 64, 32, 256, 128, 20.0, torch.float32),  # conv1/conv2 (paper) spatial sizes
    (3, 8, 32, 16, 256, 128, 5.0, torch.bfloat16),  # conv3
    (3, 4, 16, 8, 256, 128, 33.0, torch.float16),  # conv4/conv5: 16x upsampling
    (3, 4, 8, 4, 8, 4, 50.0, torch.float32),  # equal sizes: no interpolation
    (3, 4, 32, 16, 16, 8, 25.0, torch.float32),  # 2x downsampling
    (2, 4, 4, 4, 16, 512, 15.0, torch.float32),  # W > 256: several column blocks per row
]


@pytest.mark.parametrize("B,C,h,w,H,W,R,dtype", EXACT_CASES)
def test_exact_inputs_match_reference_bit_for_bit(device, B, C, h, w, H, W, R, dtype):
    features = integer_features(B, C, h, w, dtype, seed=B * 1000 + H + W)
    images = images_like(B, H, W, seed=H * W)
    erased, mask, threshold = run(features, images, R, FILL, device)
    ref_erased, ref_mask = attention_erase_reference(features, images, R, FILL)
    assert torch.equal(threshold, kth_largest(features, (H, W), R))
    assert torch.equal(mask, ref_mask)
    assert torch.equal(erased, ref_erased)
    assert (mask[1::3] if B > 1 else mask[:0]).all()  # all-zero maps: every pixel ties at t = 0
    assert (mask.flatten(1).sum(1) >= num_erased(R, H * W)).all()


@pytest.mark.parametrize("R", [1e-4, 99.999])
def test_extreme_ranks_k1_and_n_minus_1(device, R):
    features = integer_features(3, 8, 8, 4, torch.float32, seed=7)
    images = images_like(3, 32, 16, seed=8)
    erased, mask, threshold = run(features, images, R, 0.0, device)
    ref_erased, ref_mask = attention_erase_reference(features, images, R, 0.0)
    assert torch.equal(threshold, kth_largest(features, (32, 16), R))
    assert torch.equal(mask, ref_mask) and torch.equal(erased, ref_erased)


@pytest.mark.parametrize("h,w,H,W", [(7, 5, 200, 100), (13, 9, 37, 29)])
def test_any_ratio_agrees_with_the_reference_up_to_rounding(device, h, w, H, W):
    """Non-power-of-two ratios round in the bilinear weights; how is build-specific in ATen (FMA use, order).

    The kernel follows this machine's torch 2.14 CPU order, but only exact-arithmetic inputs are required
    to match bit for bit; here the threshold agrees to rounding and masks differ only at it.
    """
    features = integer_features(2, 4, h, w, torch.float32, seed=h * w)
    images = images_like(2, H, W, seed=3)
    assert_agrees_up_to_rounding(features, images, 30.0, device)


@pytest.mark.parametrize(
    "B,C,h,w,H,W,R,dtype",
    [
        (2, 256, 64, 32, 256, 128, 20.0, torch.float32),  # paper shape
        (2, 256, 64, 32, 256, 128, 20.0, torch.bfloat16),
        (4, 64, 16, 8, 64, 32, 10.0, torch.bfloat16),  # smoke shape
        (2, 2048, 16, 8, 256, 128, 30.0, torch.float32),  # conv5
    ],
)
def test_random_inputs_disagree_only_at_the_threshold(device, B, C, h, w, H, W, R, dtype):
    """Random activations: the channel sum's order differs from PyTorch's, so A may differ in the last bits."""
    g = torch.Generator().manual_seed(C + H)
    features = torch.randn(B, C, h, w, generator=g).to(dtype)
    images = images_like(B, H, W, seed=5)
    assert_agrees_up_to_rounding(features, images, R, device)


def assert_agrees_up_to_rounding(features, images, R, device):
    """Threshold within 1e-5 relative; at most 0.05% of mask pixels differ, each within 1e-5 of the threshold."""
    H, W = images.shape[-2:]
    erased, mask, threshold = run(features, images, R, FILL, device)
    ref_erased, ref_mask = attention_erase_reference(features, images, R, FILL)
    scores = resize_map(attention_map(features), (H, W))
    ref_threshold = kth_largest(features, (H, W), R)
    assert torch.allclose(threshold, ref_threshold, rtol=1e-5, atol=0)
    differ = mask != ref_mask
    assert differ.float().mean().item() <= MAX_MASK_DISAGREEMENT
    near = (scores - ref_threshold.view(-1, 1, 1)).abs() <= 1e-5 * ref_threshold.view(-1, 1, 1)
    assert near[differ].all()
    agree = ~differ[:, None].expand_as(images)
    assert torch.equal(erased[agree], ref_erased[agree])


def test_non_contiguous_inputs_are_copied(device):
    features = integer_features(3, 8, 16, 8, torch.float32, seed=11)
    images = images_like(3, 64, 32, seed=12)
    strided_features = features.to(memory_format=torch.channels_last)[:, ::2]  # channels_last and sliced
    strided_images = images.transpose(2, 3).contiguous().transpose(2, 3)
    assert not strided_features.is_contiguous() and not strided_images.is_contiguous()
    erased, mask, _ = run(strided_features, strided_images, 20.0, FILL, device)
    ref_erased, ref_mask = attention_erase_reference(features[:, ::2].contiguous(), images, 20.0, FILL)
    assert torch.equal(mask, ref_mask) and torch.equal(erased, ref_erased)


@pytest.mark.parametrize("R", [0, 100, -1, 150])
def test_ratio_outside_0_100_is_refused(R):
    features = torch.ones(1, 2, 4, 4)
    images = torch.zeros(1, 3, 8, 8)
    with pytest.raises(EraseError, match=r"outside \(0, 100\)"):
        attention_erase_triton(features, images, R)


@pytest.mark.parametrize("image_dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_fill_per_channel_and_output_dtypes(device, image_dtype):
    features = integer_features(2, 4, 8, 4, torch.float32, seed=13)
    images = images_like(2, 32, 16, seed=14, dtype=image_dtype)
    erased, mask = attention_erase_triton(features.to(device), images.to(device), 25.0, FILL)
    assert erased.dtype == image_dtype and erased.shape == images.shape and erased.device.type == device.type
    assert mask.dtype == torch.bool and mask.shape == (2, 32, 16)
    erased, mask = erased.cpu(), mask.cpu()
    for c, value in enumerate(FILL):
        assert (erased[:, c][mask] == torch.tensor(value, dtype=image_dtype)).all()
    keep = ~mask[:, None].expand_as(images)
    assert torch.equal(erased[keep], images[keep])
    assert mask[0].sum().item() >= num_erased(25.0, 32 * 16)


def test_bad_shapes_and_fills_are_refused(device):
    features = torch.ones(2, 4, 4, 4, device=device)
    with pytest.raises(EraseError, match="same batch size"):
        attention_erase_triton(features, torch.zeros(3, 3, 8, 8, device=device), 10)
    with pytest.raises(EraseError, match="fewer than 2 pixels"):
        attention_erase_triton(features, torch.zeros(2, 3, 1, 1, device=device), 10)
    with pytest.raises(EraseError, match="one value or one per channel"):
        attention_erase_triton(features, torch.zeros(2, 3, 8, 8, device=device), 10, fill=(1.0, 2.0))


def test_dispatch_backend_triton_runs_this_kernel(device, monkeypatch):
    import kernels.fused_erase as module

    calls = []

    def spy(*args):
        calls.append(args)
        return attention_erase_triton(*args)

    monkeypatch.setattr(module, "attention_erase_triton", spy)
    features = integer_features(3, 8, 16, 8, torch.bfloat16, seed=15)
    images = images_like(3, 64, 32, seed=16)
    erased, mask = kernels.attention_erase(features.to(device), images.to(device), 20.0, FILL, backend="triton")
    ref_erased, ref_mask = attention_erase_reference(features, images, 20.0, FILL)
    assert len(calls) == 1
    assert torch.equal(mask.cpu(), ref_mask) and torch.equal(erased.cpu(), ref_erased)


def test_bytes_moved_of_the_paper_shape():
    # features 32*256*64*32*2 + A_low 32*2048*4*(1 write + 4 reads) + histograms 32*4096*4*3 + state 32*4*4*2
    # + images 2*32*3*256*128*4 + mask 32*256*128
    expected = 33_554_432 + 1_310_720 + 1_572_864 + 1_024 + 25_165_824 + 1_048_576
    assert bytes_moved(32, 256, 64, 32, 256, 128, torch.bfloat16) == expected
    assert bytes_moved(128, 256, 64, 32, 256, 128, torch.float32) == 4 * expected + 4 * 33_554_432


def test_launch_config_keeps_the_gpu_busy_on_every_table9_layer():
    for C, h, w in [(64, 64, 32), (256, 64, 32), (512, 32, 16), (1024, 16, 8), (2048, 16, 8)]:
        cfg = launch_config(32, C, h, w, 256, 128)
        assert 32 * cfg.reduce_tiles >= 256  # reduction programs at B = 32
        assert cfg.block_c * cfg.block_p == 4096 and cfg.block_y * cfg.block_x == 1024
        assert 32 * -(-256 // cfg.hist_rows) >= 256 and not cfg.cl_order
    assert launch_config(32, 64, 16, 8, 64, 32).cl_order  # ATen's channels-last order below H + W = 129


def test_package_dispatch_survives_importing_the_kernel_module():
    """The kernel module has its own name, so importing it cannot rebind the package's dispatch function."""
    import kernels.fused_erase  # noqa: F401
    from kernels import attention_erase

    assert callable(attention_erase) and attention_erase is kernels.attention_erase

    features = integer_features(1, 2, 4, 4, torch.float32, seed=17)
    images = images_like(1, 8, 8, seed=18)
    erased, mask = attention_erase(features, images, 20.0, FILL, backend="reference")
    ref_erased, ref_mask = attention_erase_reference(features, images, 20.0, FILL)
    assert torch.equal(mask, ref_mask) and torch.equal(erased, ref_erased)
