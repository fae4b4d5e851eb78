"""GPU kernels of the harness and the PyTorch reference they are tested against.

``attention_erase`` is the one entry point: it picks the fused Triton kernel on
CUDA and the reference elsewhere; ``backend`` forces either.

Dependencies go one way only: ``aea`` imports ``kernels``, never the reverse.
Bad input to a kernel raises ``EraseError`` (a ``ValueError`` whose message names
the fix); ``aea.erasing`` and ``aea.config`` turn it into ``aea.errors.AEAError``
where they call in.  Importing this package does not import torch (the reference
and the Triton module are imported when first used), so ``aea.config`` can check
an erase ratio with ``check_ratio`` without paying for torch.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from kernels.reference import Fill

BACKENDS = ("auto", "triton", "reference")


class EraseError(ValueError):
    """Bad input to an erase kernel (ratio, shapes, fill, backend); the message names the fix."""


def check_ratio(ratio: float) -> float:
    """``ratio`` as a float percentage; refuses R outside (0, 100), the one check of the erase ratio."""
    if not 0.0 < float(ratio) < 100.0:
        raise EraseError(f"erase ratio R={ratio} is outside (0, 100); set R to a percentage such as 10 or 20")
    return float(ratio)


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
        raise EraseError(f"unknown erase backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    use_triton = backend == "triton" or (backend == "auto" and images.device.type == "cuda")
    if not use_triton:
        from kernels.reference import attention_erase_reference

        return attention_erase_reference(features, images, ratio, fill)
    if not triton_usable(images.device):
        raise EraseError(
            "the Triton erase backend needs a CUDA device or TRITON_INTERPRET=1; use --erase-backend reference"
        )
    from kernels.fused_erase import attention_erase_triton

    return attention_erase_triton(features, images, ratio, fill)
