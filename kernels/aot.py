"""Ahead-of-time compile of the erase kernels for sm_80, sm_90a and sm_100a, and their ptxas resource usage.

No GPU is needed: ``triton.compile`` lowers each kernel to PTX for a given ``GPUTarget`` and the ptxas
bundled with Triton reports registers, spill bytes and stack per kernel (``-v``); shared memory is
Triton's dynamic allocation (``metadata.shared``) plus any static smem ptxas reports.

``python -m kernels.aot`` prints the table for the paper shape, the smoke shape and every Table-9 layer
(ResNet-50, last stride 1, 256x128 input) at B = 32 and 128 with the block sizes the launcher picks;
``--json`` prints the rows as JSON.  Run it in a process without TRITON_INTERPRET=1: under the
interpreter ``@triton.jit`` yields interpreted functions that ``triton.compile`` cannot take.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass

#: Compute capability per reported arch (Triton adds the "a" suffix from sm_90 on): A100, H100/H200, B200/GB200.
#: For sm_100a Triton picks its bundled Blackwell ptxas (``get_ptxas(100)``: ptxas-blackwell, CUDA 13).
ARCHS: dict[str, int] = {"sm_80": 80, "sm_90a": 90, "sm_100a": 100}
#: (C, h, w, H, W) of the features and images per named shape.
SHAPES: dict[str, tuple[int, int, int, int, int]] = {
    "smoke": (64, 16, 8, 64, 32),
    "conv1": (64, 64, 32, 256, 128),
    "conv2 (paper)": (256, 64, 32, 256, 128),
    "conv3": (512, 32, 16, 256, 128),
    "conv4": (1024, 16, 8, 256, 128),
    "conv5": (2048, 16, 8, 256, 128),
}
BATCHES = (32, 128)
FEATURE_DTYPES = ("bf16", "fp16", "fp32")
IMAGE_DTYPE = "fp32"
IMAGE_CHANNELS = 3
KERNELS = ("reduce", "hist0", "hist1", "hist2", "erase")

_USAGE = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")
_REGISTERS = re.compile(r"Used (\d+) registers")
_SMEM = re.compile(r"(\d+) bytes smem")


@dataclass(frozen=True)
class Launch:
    """One compiled variant: kernel, argument types/values as the JIT would specialise them, arch."""

    kernel: str
    arch: str
    signature: tuple[tuple[str, str], ...]
    constexprs: tuple[tuple[str, object], ...]
    aligned: tuple[str, ...]
    num_warps: int


@dataclass
class Usage:
    """Resources of one compiled variant and the shapes (name/B/dtype) that launch it."""

    kernel: str
    arch: str
    shapes: str
    constexprs: str
    num_warps: int
    registers: int
    spill_stores: int
    spill_loads: int
    stack_bytes: int
    shared_bytes: int


def _args(kernel: str, C: int, h: int, w: int, H: int, W: int, cfg, feature_dtype: str) -> tuple[dict, dict]:
    """(runtime argument name -> (type, value or None), constexpr name -> value) of one launch."""
    from kernels.fused_erase import HIST_WORDS, RADIX

    p = lambda t: (t, None)  # noqa: E731  (pointer: value irrelevant, always 16-byte aligned)
    i = lambda v: ("i32", v)  # noqa: E731
    f = ("fp32", None)
    if kernel == "reduce":
        args = dict(feat=p(f"*{feature_dtype}"), low=p("*fp32"), hist=p("*i32"), C=i(C), HW=i(h * w))
        return args, dict(BLOCK_C=cfg.block_c, BLOCK_P=cfg.block_p, HIST_WORDS=HIST_WORDS)
    common = dict(CL_ORDER=cfg.cl_order, EMULATE_FMA=False, BLOCK_Y=cfg.block_y, BLOCK_X=cfg.block_x, **RADIX)
    if kernel.startswith("hist"):
        args = dict(low=p("*fp32"), hist=p("*i32"), state=p("*i32"), k=i(None), h=i(h), w=i(w), H=i(H), W=i(W),
                    scale_h=f, scale_w=f, rows=i(cfg.hist_rows))
        return args, dict(PASS=int(kernel[-1]), **common)
    args = dict(images=p(f"*{IMAGE_DTYPE}"), erased=p(f"*{IMAGE_DTYPE}"), mask=p("*u8"), fill=p(f"*{IMAGE_DTYPE}"),
                threshold=p("*fp32"), low=p("*fp32"), hist=p("*i32"), state=p("*i32"), CI=i(IMAGE_CHANNELS),
                h=i(h), w=i(w), H=i(H), W=i(W), scale_h=f, scale_w=f, rows=i(cfg.erase_rows))
    return args, common


def launches() -> dict[Launch, list[str]]:
    """Every distinct compiled variant the launcher would use for ``SHAPES`` x ``BATCHES`` x dtypes x ``ARCHS``."""
    from kernels.fused_erase import launch_config

    found: dict[Launch, list[str]] = {}
    for name, (C, h, w, H, W) in SHAPES.items():
        for B in BATCHES:
            cfg = launch_config(B, C, h, w, H, W)
            for dtype in FEATURE_DTYPES:
                for kernel in KERNELS:
                    if kernel != "reduce" and dtype != FEATURE_DTYPES[0]:
                        continue  # only the reduction reads the features
                    args, constexprs = _args(kernel, C, h, w, H, W, cfg, dtype)
                    signature, aligned = [], []
                    for arg, (ty, value) in args.items():
                        if value == 1:  # the JIT turns integer 1 into a constant
                            constexprs[arg] = 1
                            continue
                        signature.append((arg, ty))
                        if ty.startswith("*") or (value is not None and value % 16 == 0):
                            aligned.append(arg)
                    for arch in ARCHS:
                        launch = Launch(kernel, arch, tuple(signature), tuple(sorted(constexprs.items())),
                                        tuple(aligned), cfg.num_warps)
                        label = f"{name} B={B}" + (f" {dtype}" if kernel == "reduce" else "")
                        found.setdefault(launch, []).append(label)
    return found


def ptxas_usage(ptx: str, arch: str) -> dict[str, int]:
    """Registers, spill stores/loads, stack and static smem bytes that ``ptxas -v`` reports for ``ptx``."""
    from triton.backends.nvidia.compiler import get_ptxas

    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "kernel.ptx")
        with open(src, "w") as fh:
            fh.write(ptx)
        # the flags Triton's own cubin step passes (backends/nvidia/compiler.py: make_cubin)
        cmd = [get_ptxas(ARCHS[arch]).path, "-lineinfo", "-v", "--regAllocOptLevel=2", f"--gpu-name={arch}",
               src, "-o", os.path.join(tmp, "kernel.cubin")]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return parse_ptxas(out.stderr + out.stdout)


def parse_ptxas(text: str) -> dict[str, int]:
    """Resource numbers of the single entry function in a ``ptxas -v`` log."""
    usage = _USAGE.search(text)
    registers = _REGISTERS.search(text)
    if usage is None or registers is None:
        raise ValueError(f"no resource usage in ptxas output: {text!r}")
    smem = _SMEM.search(text)
    return dict(
        registers=int(registers.group(1)),
        stack_bytes=int(usage.group(1)),
        spill_stores=int(usage.group(2)),
        spill_loads=int(usage.group(3)),
        static_smem=int(smem.group(1)) if smem else 0,
    )


def compile_launch(launch: Launch) -> tuple[str, int, int]:
    """(PTX, dynamic shared bytes, warps) of one variant, compiled without a GPU."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from kernels import fused_erase as ae

    fn = {"reduce": ae._reduce_kernel, "erase": ae._erase_kernel}.get(launch.kernel, ae._hist_kernel)
    if not isinstance(fn, triton.runtime.jit.JITFunction):
        raise RuntimeError("kernels.aot needs compiled kernels: run it without TRITON_INTERPRET=1")
    signature = dict(launch.signature)
    constexprs = dict(launch.constexprs)
    signature.update({name: "constexpr" for name in constexprs})
    attrs = {(fn.arg_names.index(a),): [["tt.divisibility", 16]] for a in launch.aligned}
    src = ASTSource(fn=fn, signature=signature, constexprs=constexprs, attrs=attrs)
    compiled = triton.compile(src, target=GPUTarget("cuda", ARCHS[launch.arch], 32),
                              options=dict(num_warps=launch.num_warps))
    return compiled.asm["ptx"], compiled.metadata.shared, compiled.metadata.num_warps


def _measure(item: tuple[Launch, list[str]]) -> Usage:
    from kernels.fused_erase import RADIX

    launch, labels = item
    ptx, shared, warps = compile_launch(launch)
    ptxas = ptxas_usage(ptx, launch.arch)
    fixed = ("EMULATE_FMA", *RADIX)  # the same in every variant: left out of the table
    return Usage(
        kernel=launch.kernel,
        arch=launch.arch,
        shapes=", ".join(labels),
        constexprs=" ".join(f"{k}={v}" for k, v in launch.constexprs if k not in fixed),
        num_warps=warps,
        registers=ptxas["registers"],
        spill_stores=ptxas["spill_stores"],
        spill_loads=ptxas["spill_loads"],
        stack_bytes=ptxas["stack_bytes"],
        shared_bytes=shared + ptxas["static_smem"],
    )


def report(jobs: int | None = None) -> list[Usage]:
    """Compile every variant (in ``jobs`` processes) and return its resource usage, in a stable order."""
    items = sorted(launches().items(), key=lambda kv: (KERNELS.index(kv[0].kernel), kv[1][0], kv[0].arch))
    jobs = jobs or os.cpu_count() or 1
    if jobs == 1:
        return [_measure(item) for item in items]
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(_measure, items))


def format_table(rows: list[Usage]) -> str:
    """Fixed-width text table of ``rows``."""
    head = ("kernel", "arch", "regs", "spill st", "spill ld", "stack", "shared", "warps", "constexprs", "shapes")
    body = [(r.kernel, r.arch, r.registers, r.spill_stores, r.spill_loads, r.stack_bytes, r.shared_bytes,
             r.num_warps, r.constexprs, r.shapes) for r in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body)]
    lines = ["  ".join(str(x).ljust(wd) for x, wd in zip(line, widths)).rstrip() for line in (head, *body)]
    lines.insert(1, "  ".join("-" * wd for wd in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kernels.aot", description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")
    parser.add_argument("--jobs", type=int, default=None, help="compile processes (default: all cores)")
    args = parser.parse_args(argv)
    if os.environ.get("TRITON_INTERPRET") == "1":
        print("kernels.aot: unset TRITON_INTERPRET (the interpreter cannot compile kernels)", file=sys.stderr)
        return 2
    rows = report(args.jobs)
    print(json.dumps([asdict(r) for r in rows], indent=1) if args.json else format_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
