"""GPU kernels of the harness and the PyTorch reference they are tested against.

``attention_erase`` is the one entry point: it picks the fused Triton kernel on
CUDA and the reference elsewhere; ``backend`` forces either.
"""

from __future__ import annotations

import os

import torch

from aea.errors import AEAError
from kernels.reference import Fill, attention_erase_reference

BACKENDS = ("auto", "triton", "reference")


def triton_usable(device: torch.device) -> bool:
    """True when the Triton path can run here: a CUDA device, or the CPU interpreter (TRITON_INTERPRET=1)."""
    if device.type == "cuda":
        return True
    return os.environ.get("TRITON_INTERPRET") == "1"


def attention_erase(
    features: torch.Tensor,
    images: torch.Tensor,
    ratio: float,
    fill: Fill = 0.0,
    backend: str = "auto",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Erase the top-``ratio`` % attention pixels; see ``kernels.reference`` for the exact semantics."""
    if backend not in BACKENDS:
        raise AEAError(f"unknown erase backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    use_triton = backend == "triton" or (backend == "auto" and images.device.type == "cuda")
    if not use_triton:
        return attention_erase_reference(features, images, ratio, fill)
    if not triton_usable(images.device):
        raise AEAError("the Triton erase backend needs a CUDA device or TRITON_INTERPRET=1; use --erase-backend reference")
    from kernels.fused_erase import attention_erase_triton

    return attention_erase_triton(features, images, ratio, fill)
