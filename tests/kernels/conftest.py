"""Kernel tests: Triton's CPU interpreter where there is no GPU, the compiled kernels on a GPU.

Triton fixes interpreter vs compiled mode when it is first imported, so TRITON_INTERPRET=1 is set
here, at import, before these tests import triton (pytest imports this file before the test modules
beside it).  No test module of this project imports triton at module level, so nothing imports it
earlier.  If something does, the ``device`` fixture fails with the fix instead of running the
kernels in the wrong mode.  On a CUDA machine the variable is left alone and the same tests run the
compiled kernels on the GPU against the CPU reference.
"""

from __future__ import annotations

import os
import sys

import pytest
import torch

if "TRITON_INTERPRET" not in os.environ and not torch.cuda.is_available():
    if "triton" in sys.modules:
        _LATE = "triton was imported before tests/kernels/conftest.py could set TRITON_INTERPRET=1"
    else:
        _LATE = ""
        os.environ["TRITON_INTERPRET"] = "1"
else:
    _LATE = ""

pytest.importorskip("triton", reason="the Triton kernels need the triton package (installed with CUDA torch)")


@pytest.fixture(scope="session")
def device() -> torch.device:
    """Where the kernels run: CPU under the interpreter, else CUDA."""
    from kernels.fused_erase import interpreter_active

    if interpreter_active():
        return torch.device("cpu")
    if torch.cuda.is_available():
        return torch.device("cuda")
    pytest.fail(f"{_LATE or 'TRITON_INTERPRET is not 1 and there is no GPU'}; run `TRITON_INTERPRET=1 pytest tests/kernels`")
