"""What training and the metrics do on the accelerator: on CUDA when there is one, else on the CPU.

Until issue 20 nothing of this had run on CUDA: bf16 autocast around a training step, the fused erase inside
training, the torch-window metrics and the cached loader's augmentation on the device. The device check
(``workflow/scripts/device-check.sh``, section a) runs this file on the GPU; the default suite runs it on the CPU
at the smoke profile's sizes (with the kernel in Triton's interpreter), so the tests themselves never rot.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aea.config import load_profile, resolve
from aea.data.loaders import build_train_loader, preload_pixels
from aea.device import place
from aea.erasing import EraseInput, SalientErasing
from aea.methods import get_method
from aea.metrics import evaluate_features, evaluate_ranking_loop, pairwise_euclidean
from aea.models.aea import build_networks
from aea.train import training_step
from kernels import triton_usable

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")


def smoke_step_inputs(seed: int = 0):
    """The smoke profile's AEA networks and a random batch (on the CPU P x K = 2 x 2: Triton's interpreter takes
    seconds per image)."""
    small = {} if DEVICE.type == "cuda" else {"batch_p": 2, "batch_k": 2}
    cfg = resolve(load_profile("smoke"), "market1501", "aea", {"pretrained": None, **small}, 0)
    torch.manual_seed(seed)
    model = place(build_networks(cfg, 16, pretrained=None), DEVICE).train()
    g = torch.Generator().manual_seed(seed)
    B = cfg.batch_p * cfg.batch_k
    batch = {"images": torch.randn(B, 3, cfg.height, cfg.width, generator=g).to(DEVICE),
             "pids": torch.arange(cfg.batch_p).repeat_interleave(cfg.batch_k).to(DEVICE),
             "indices": torch.arange(B), "flipped": torch.zeros(B, dtype=torch.bool)}
    return cfg, model, batch


def one_step(cfg, model, batch, backend: str, amp: bool) -> tuple[float, dict, list[torch.Tensor]]:
    """Loss, logged values and gradients of one AEA step (joint phase), dropout drawn from seed 0."""
    strategy = SalientErasing(cfg.erase_ratio, cfg.erase_fill, backend=backend, layer=cfg.erase_layer)
    torch.manual_seed(0)
    model.zero_grad(set_to_none=True)
    with torch.autocast(DEVICE.type, dtype=torch.bfloat16, enabled=amp):
        loss, values, _ = training_step(cfg, get_method("aea"), model, strategy, batch, joint=True,
                                        generator=torch.Generator(device=DEVICE).manual_seed(1))
    loss.backward()
    return loss.item(), values, [p.grad for p in model.parameters() if p.grad is not None]


def test_a_bf16_autocast_step_is_finite_and_near_the_fp32_step():
    cfg, model, batch = smoke_step_inputs()
    fp32, fp32_values, _ = one_step(cfg, model, batch, "reference", amp=False)
    bf16, bf16_values, grads = one_step(cfg, model, batch, "reference", amp=True)
    assert np.isfinite(bf16) and all(torch.isfinite(g).all() for g in grads)
    assert abs(bf16 - fp32) <= 0.02 * abs(fp32), (bf16, fp32)
    # the erased share is R% of the pixels under either precision (ties at the threshold are all erased)
    assert abs(bf16_values["erased_fraction"] - cfg.erase_ratio / 100) < 0.01
    assert abs(fp32_values["erased_fraction"] - cfg.erase_ratio / 100) < 0.01


@pytest.mark.skipif(not triton_usable(DEVICE), reason="the Triton erase needs CUDA or TRITON_INTERPRET=1")
@pytest.mark.parametrize("amp", [False, pytest.param(True, marks=pytest.mark.skipif(
    DEVICE.type != "cuda", reason="bf16 in the interpreter takes ~40 s here; tests/kernels covers bf16 inputs"))],
    ids=["fp32", "bf16-autocast"])
def test_the_kernel_inside_a_training_step_erases_what_the_reference_erases(amp):
    """The basic network's real conv2 activations (fp32, or bf16 under autocast) through the Triton kernel and
    the reference: masks agree up to the kernel tests' boundary tolerance, so the step's loss agrees too."""
    from kernels.fused_erase import MAX_MASK_DISAGREEMENT

    cfg, model, batch = smoke_step_inputs()
    with torch.no_grad(), torch.autocast(DEVICE.type, dtype=torch.bfloat16, enabled=amp):
        maps = model.basic(batch["images"], taps=(cfg.erase_layer,)).maps[cfg.erase_layer]
    assert maps.dtype == (torch.bfloat16 if amp else torch.float32)
    masks = {}
    for backend in ("triton", "reference"):
        erase = SalientErasing(cfg.erase_ratio, cfg.erase_fill, backend=backend, layer=cfg.erase_layer)
        _, masks[backend] = erase.erase(EraseInput(batch["images"], features=maps, indices=batch["indices"],
                                                   flipped=batch["flipped"]))
    assert (masks["triton"] != masks["reference"]).float().mean().item() <= MAX_MASK_DISAGREEMENT
    kernel, _, _ = one_step(cfg, model, batch, "triton", amp)
    reference, _, _ = one_step(cfg, model, batch, "reference", amp)
    assert kernel == pytest.approx(reference, rel=1e-3)


def test_metrics_on_the_device_equal_the_sorting_loop():
    """Euclidean ranking, CMC and both mAPs in the torch-window path on the device against the stable-sort loop
    on the CPU (float64 features: no near-ties, so the orderings are the same)."""
    rng = np.random.default_rng(0)
    q_pids, g_pids = rng.integers(0, 40, 120), np.concatenate([np.arange(40).repeat(8), rng.integers(-1, 40, 80)])
    q_cams, g_cams = rng.integers(0, 4, 120), rng.integers(0, 4, len(g_pids))
    centres = rng.normal(size=(40, 32))
    q = torch.tensor(centres[q_pids] + rng.normal(scale=1.2, size=(120, 32)))
    g = torch.tensor(centres[np.maximum(g_pids, 0)] + rng.normal(scale=1.2, size=(len(g_pids), 32)))
    fast = evaluate_features(q.to(DEVICE), g.to(DEVICE), q_pids, g_pids, q_cams, g_cams)
    loop = evaluate_ranking_loop(pairwise_euclidean(q, g).numpy(), q_pids, g_pids, q_cams, g_cams)
    assert 0.2 < fast.map_official < 0.95  # a problem with some wrong matches at the top
    np.testing.assert_allclose(fast.cmc, loop.cmc, atol=1e-12)
    assert fast.map_official == pytest.approx(loop.map_official, abs=1e-9)
    assert fast.map_noninterp == pytest.approx(loop.map_noninterp, abs=1e-9)


def test_the_cached_loader_augments_on_the_device_as_the_per_image_loader_does(tiny_market):
    """uint8 cache on the device, a batch normalised, padded, cropped and flipped there: the values the
    per-image loader computes on the CPU (bit for bit on the CPU; within an ulp on CUDA)."""
    split = tiny_market
    pixels = preload_pixels(split.train, 64, 32).to(DEVICE)
    for pad in (0, 5):
        kw = dict(p=4, k=2, height=64, width=32, seed=3, epoch=2, pad=pad)
        cpu = list(build_train_loader(split.train, **kw))
        device = list(build_train_loader(split.train, **kw, pixels=pixels))
        assert len(cpu) == len(device)
        for a, b in zip(cpu, device):
            assert b["images"].device.type == DEVICE.type
            for key in ("pids", "camids", "indices", "flipped"):
                assert torch.equal(a[key], b[key].cpu())
            torch.testing.assert_close(b["images"].cpu(), a["images"], rtol=0, atol=0 if DEVICE.type == "cpu" else 1e-6)
