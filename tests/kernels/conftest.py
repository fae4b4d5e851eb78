"""Kernel tests: Triton's CPU interpreter where there is no GPU, the compiled kernels on a GPU.

The mode is chosen in one place, ``tests/conftest.py``, before any test module is collected: it sets
TRITON_INTERPRET=1 when the variable is unset and there is no GPU.  On a CUDA machine the variable is
left alone and the same tests run the compiled kernels on the GPU against the CPU reference.
"""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("triton", reason="the Triton kernels need the triton package (installed with CUDA torch)")


@pytest.fixture(scope="session")
def device() -> torch.device:
    """Where the kernels run: CPU under the interpreter, else CUDA."""
    from kernels.fused_erase import interpreter_active

    if interpreter_active():
        return torch.device("cpu")
    if torch.cuda.is_available():
        return torch.device("cuda")
    pytest.fail("TRITON_INTERPRET is not 1 and there is no GPU; run `TRITON_INTERPRET=1 pytest tests/kernels`")
