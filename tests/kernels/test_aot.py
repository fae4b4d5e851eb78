"""Ahead-of-time compile for sm_80 / sm_90a / sm_100a: every kernel variant the launcher uses, without spills.

Compiling needs ``@triton.jit`` kernels, which TRITON_INTERPRET=1 (set by ``tests/conftest.py`` on machines
without a GPU) turns into interpreted functions, so ``python -m kernels.aot`` runs in a subprocess
without it.  Triton's on-disk cache makes reruns take seconds (about 40 s cold on 2 cores).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from kernels.aot import ARCHS, KERNELS, SHAPES, parse_ptxas

PTXAS_LOG = """ptxas info    : 0 bytes gmem
ptxas info    : Compiling entry function '_hist_kernel' for 'sm_90a'
ptxas info    : Function properties for _hist_kernel
    8 bytes stack frame, 12 bytes spill stores, 16 bytes spill loads
ptxas info    : Used 96 registers, used 1 barriers, 24 bytes smem, 380 bytes cmem[0]
"""


def test_parse_ptxas_reads_every_number():
    assert parse_ptxas(PTXAS_LOG) == dict(registers=96, stack_bytes=8, spill_stores=12, spill_loads=16, static_smem=24)
    with pytest.raises(ValueError, match="no resource usage"):
        parse_ptxas("ptxas fatal   : Unresolved extern function")


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    out = subprocess.run([sys.executable, "-m", "kernels.aot", "--json"], env=env, capture_output=True, text=True,
                         timeout=600, check=False)
    assert out.returncode == 0, out.stderr[-4000:]
    return json.loads(out.stdout)


def test_every_kernel_shape_and_arch_is_compiled(rows):
    covered = {(r["kernel"], shape.split(" B=")[0], r["arch"]) for r in rows for shape in r["shapes"].split(", ")}
    assert covered == {(k, s, a) for k in KERNELS for s in SHAPES for a in ARCHS}


def test_no_kernel_spills_or_uses_a_stack(rows):
    bad = [r for r in rows if r["spill_stores"] or r["spill_loads"] or r["stack_bytes"]]
    assert not bad, bad


def test_resources_leave_room_for_several_programs_per_sm(rows):
    for r in rows:
        assert r["num_warps"] == 4
        assert r["registers"] <= 168, r  # >= 3 programs of 128 threads fit the 64k registers of an SM
        assert r["shared_bytes"] <= 16 * 1024, r  # far below the 48 KiB default limit
