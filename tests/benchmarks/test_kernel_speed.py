"""Speed of the fused Triton erase against the eager PyTorch reference (paper shape).

``pytest tests/benchmarks --benchmark-only``.  Features (B, 256, 64, 32) in bf16 and fp32, images
(B, 3, 256, 128) fp32, R = 20, B = 32 and 128.  On CUDA the kernel benchmark also times the reference in
the same run and checks the goals: >= 5x faster than the reference and within 2x of the time the
kernel's bytes-moved model needs at the measured device-to-device copy bandwidth.  Without CUDA only
the reference is benchmarked.  triton is imported inside the tests, never at module level (Triton's
mode is chosen once, in tests/conftest.py).
"""

from __future__ import annotations

import pytest
import torch

from aea.devicecheck import BANDWIDTH_GOAL, SPEEDUP_GOAL, device_seconds
from aea.devicecheck import copy_bandwidth as measure_copy_bandwidth
from kernels.reference import attention_erase_reference

C, h, w, H, W = 256, 64, 32, 256, 128
RATIO = 20.0
#: Nominal DRAM bandwidth (bytes/s) of common GPUs, printed next to the measured copy bandwidth.
NOMINAL_BANDWIDTH = {
    "H100 80GB HBM3": 3.35e12,
    "H100 PCIe": 2.0e12,
    "H200": 4.8e12,
    "A100-SXM4-80GB": 2.039e12,
    "A100-SXM4-40GB": 1.555e12,
    "A100 80GB PCIe": 1.935e12,
    "A100-PCIE-40GB": 1.555e12,
    "L4": 0.3e12,
}
DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
CASES = [(B, dtype) for B in (32, 128) for dtype in (torch.bfloat16, torch.float32)]


def _inputs(B: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(B)
    features = torch.randn(B, C, h, w, generator=g).relu().to(dtype)
    images = torch.randn(B, 3, H, W, generator=g)
    return features.to(DEVICE), images.to(DEVICE)


def _cuda_seconds(fn, reps: int = 20) -> float:
    """Mean seconds per call of ``fn`` over ``reps`` back-to-back calls, by CUDA events, after warm-up (the device
    check's timer, aea.devicecheck.device_seconds)."""
    return device_seconds(fn, DEVICE, reps=reps)


@pytest.fixture(scope="module")
def copy_bandwidth() -> float:
    """Device-to-device copy bandwidth in bytes/s (read + write of a 512 MiB buffer)."""
    return measure_copy_bandwidth(DEVICE)


def _report(capsys, lines: list[str]) -> None:
    with capsys.disabled():
        print("\n" + "\n".join(lines))


@pytest.mark.parametrize("B,dtype", CASES, ids=[f"B{B}-{str(d)[6:]}" for B, d in CASES])
def test_reference_speed(benchmark, capsys, B, dtype):
    features, images = _inputs(B, dtype)

    def run():
        out = attention_erase_reference(features, images, RATIO)
        if DEVICE.type == "cuda":
            torch.cuda.synchronize()
        return out

    erased, mask = benchmark(run)
    assert mask.flatten(1).sum(1).min().item() >= round(RATIO / 100 * H * W)
    from kernels.fused_erase import bytes_moved  # imports triton: only inside tests

    moved = bytes_moved(B, C, h, w, H, W, dtype)
    _report(capsys, [f"reference on {DEVICE}: B={B} {dtype} median {benchmark.stats.stats.median * 1e3:.2f} ms; "
                     f"the fused kernel would move {moved / 1e6:.1f} MB"])


@pytest.mark.skipif(DEVICE.type != "cuda", reason="needs CUDA: the compiled Triton kernel only runs on a GPU")
@pytest.mark.parametrize("B,dtype", CASES, ids=[f"B{B}-{str(d)[6:]}" for B, d in CASES])
def test_kernel_speed(benchmark, capsys, copy_bandwidth, B, dtype):
    from kernels.fused_erase import MAX_MASK_DISAGREEMENT, attention_erase_triton, bytes_moved, interpreter_active

    if interpreter_active():
        pytest.skip("TRITON_INTERPRET=1 in this process; run `pytest tests/benchmarks --benchmark-only` without it")
    features, images = _inputs(B, dtype)
    ref_erased, ref_mask = attention_erase_reference(features, images, RATIO)
    erased, mask = attention_erase_triton(features, images, RATIO)
    assert (mask != ref_mask).float().mean().item() <= MAX_MASK_DISAGREEMENT

    def run():
        out = attention_erase_triton(features, images, RATIO)
        torch.cuda.synchronize()
        return out

    benchmark(run)
    kernel_s = _cuda_seconds(lambda: attention_erase_triton(features, images, RATIO))
    reference_s = _cuda_seconds(lambda: attention_erase_reference(features, images, RATIO))
    moved = bytes_moved(B, C, h, w, H, W, dtype)
    floor_s = moved / copy_bandwidth
    name = torch.cuda.get_device_name()
    nominal = next((f"{bw / 1e12:.2f} TB/s nominal" for key, bw in NOMINAL_BANDWIDTH.items() if key in name), "")
    _report(capsys, [
        f"{name}: copy bandwidth {copy_bandwidth / 1e12:.2f} TB/s measured {nominal}",
        f"B={B} {dtype}: kernel {kernel_s * 1e6:.1f} us, reference {reference_s * 1e6:.1f} us, "
        f"speedup {reference_s / kernel_s:.1f}x; bytes moved {moved / 1e6:.1f} MB -> floor {floor_s * 1e6:.1f} us, "
        f"kernel at {kernel_s / floor_s:.2f}x the floor ({moved / kernel_s / 1e12:.2f} TB/s)",
    ])
    benchmark.extra_info.update(kernel_us=kernel_s * 1e6, reference_us=reference_s * 1e6, bytes_moved=moved,
                                floor_us=floor_s * 1e6)
    assert reference_s / kernel_s >= SPEEDUP_GOAL
    assert kernel_s <= BANDWIDTH_GOAL * floor_s
