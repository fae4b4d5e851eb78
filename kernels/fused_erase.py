"""Fused Triton path of the AEA erasing step (semantics: ``kernels.reference``).

Five launches, none of which writes the full-resolution attention map:

1. ``_reduce_kernel``, grid (B, tiles of h*w): ``A_low = sum_c M_c^2`` in fp32
   (B, h*w), and zeroes the image's histogram row.
2. ``_hist_kernel`` x 3 (PASS 0, 1, 2), grid (B, row bands of H): recomputes the
   bilinear value of each output pixel from ``A_low`` and builds a radix
   histogram of its fp32 bit pattern: bits 30..20 (2048 bins), then 19..10 and
   9..0 (1024 bins each) of the pixels whose higher bits match the digits chosen
   so far.  The attention is >= 0, so the int32 bit pattern orders like the value
   and three digits pin down the exact k-th largest value (radix select: no sort,
   ties need no special case, the threshold is one of the map's own values).
3. ``_erase_kernel``, grid (B, row bands of H): finishes the selection, writes
   the mask ``v >= t`` and the erased images (masked pixels are not even read).

Each program of pass p re-derives the digit of pass p-1 from that pass's
histogram (a 1-2k bin scan), so no extra "select" launch is needed; band 0 of
each image saves (prefix, remaining rank) for the next launch.

The bilinear arithmetic replicates PyTorch's CPU ``upsample_bilinear2d``
(ATen ``UpSampleKernel.cpp``) operation by operation, including where its
AVX2/AVX512 builds (compiled with FMA contraction) fuse multiply-adds (checked
against torch 2.14 on an AVX512 CPU):

* scale = fp32(in) / fp32(out); src = fma(scale, dst + 0.5, -0.5) clamped at 0;
  i0 = min(floor(src), in-1), i1 = i0 + (i0 < in-1), l1 = clamp(src - i0, 0, 1),
  l0 = 1 - l1 (equal sizes give src = dst, l1 = 0: the same values as ATen's copy
  shortcut for finite maps);
* outputs with H + W > 128 use the generic kernel's order:
  fma(fma(a00, w0, a01*w1), h0, fma(a10, w0, a11*w1) * h1);
* outputs with H + W <= 128 use the channels-last kernel's order (ATen picks it
  for small outputs): fma(a11, h1w1, fma(a10, h1w0, fma(a00, h0w0, a01*h0w1))).

On CUDA ``tl.fma`` is a true fused multiply-add.  The Triton CPU interpreter
evaluates ``tl.fma`` as a rounded multiply then add, so on CPU the kernels use
an exact emulation (fp64 sum rounded to odd, then to fp32).  With that the
resized values equal PyTorch's bit for bit whenever ``A_low`` does, which holds
for exactly representable channel sums (the channel sum's order is not
PyTorch's, so random inputs may differ in the last bit of A).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import triton
import triton.language as tl
from triton.runtime.interpreter import InterpretedFunction

from kernels import EraseError
from kernels.reference import Fill, fill_tensor, num_erased

#: Bits of the digits of passes 1 and 2 (bits 19..10 and 9..0 of the key); pass 0 takes the 11 bits above.
LOW_BITS = 10
#: Bins of pass 0 (bits 30..20) and of passes 1 and 2.
TOP_BINS = 1 << (31 - 2 * LOW_BITS)
LOW_BINS = 1 << LOW_BITS
#: Histogram words per image: pass 0 (2048 bins) + pass 1 (1024) + pass 2 (1024).
HIST_WORDS = TOP_BINS + 2 * LOW_BINS
#: int32 words of selection state per image: (prefix, rank) after passes 0 and 1.
STATE_WORDS = 4
#: Agreement with the reference on inputs whose channel sums round differently (random activations): at most
#: this share of mask pixels differ, each within 1e-5 (relative) of the threshold. The kernel tests, the speed
#: benchmark and the device tests of training (tests/test_device.py) all hold the kernel to it.
MAX_MASK_DISAGREEMENT = 5e-4
#: The radix layout as the kernels' constexpr arguments: the device code has no numbers of its own.
RADIX = dict(HIST_WORDS=HIST_WORDS, STATE_WORDS=STATE_WORDS, TOP_BINS=TOP_BINS, LOW_BITS=LOW_BITS)
_FEATURE_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


# --------------------------------------------------------------------------- device code


@triton.jit
def _fma(a, b, c, EMULATE_FMA: tl.constexpr):
    """Fused a*b + c (one rounding) on fp32 blocks of equal shape."""
    if EMULATE_FMA:
        # a*b is exact in fp64; s = RN64(p + c) with TwoSum error e; rounding s to odd
        # when inexact and then to fp32 gives the correctly rounded fused result.
        p = a.to(tl.float64) * b.to(tl.float64)
        c64 = c.to(tl.float64)
        s = p + c64
        bv = s - p
        e = (p - (s - bv)) + (c64 - bv)
        bits = s.to(tl.int64, bitcast=True)
        away = (e > 0) == (s > 0)
        bits = tl.where((e != 0) & ((bits & 1) == 0), tl.where(away, bits + 1, bits - 1), bits)
        return bits.to(tl.float64, bitcast=True).to(tl.float32)
    else:
        return tl.fma(a, b, c)


@triton.jit
def _taps(dst, n_in, scale, EMULATE_FMA: tl.constexpr):
    """Source indices and weights of output coordinates ``dst`` along one axis (ATen's formula)."""
    d = dst.to(tl.float32) + 0.5
    zero = tl.zeros_like(d)
    src = _fma(zero + scale, d, zero - 0.5, EMULATE_FMA)
    src = tl.maximum(src, 0.0)
    i0 = tl.minimum(tl.floor(src).to(tl.int32), n_in - 1)
    l1 = tl.minimum(tl.maximum(src - i0.to(tl.float32), 0.0), 1.0)
    l0 = 1.0 - l1
    i1 = tl.where(i0 < n_in - 1, i0 + 1, i0)
    return i0, i1, l0, l1


@triton.jit
def _resized(low, ys, xs, h, w, scale_h, scale_w, CL_ORDER: tl.constexpr, EMULATE_FMA: tl.constexpr):
    """Bilinear values (BLOCK_Y, BLOCK_X) at output rows ``ys`` / columns ``xs`` of one image's low-res map."""
    y0, y1, h0, h1 = _taps(ys, h, scale_h, EMULATE_FMA)
    x0, x1, w0, w1 = _taps(xs, w, scale_w, EMULATE_FMA)
    r0 = (y0 * w)[:, None]
    r1 = (y1 * w)[:, None]
    a00 = tl.load(low + r0 + x0[None, :])
    a01 = tl.load(low + r0 + x1[None, :])
    a10 = tl.load(low + r1 + x0[None, :])
    a11 = tl.load(low + r1 + x1[None, :])
    shape: tl.constexpr = a00.shape
    if CL_ORDER:
        w00 = h0[:, None] * w0[None, :]
        w01 = h0[:, None] * w1[None, :]
        w10 = h1[:, None] * w0[None, :]
        w11 = h1[:, None] * w1[None, :]
        acc = _fma(a00, w00, a01 * w01, EMULATE_FMA)
        acc = _fma(a10, w10, acc, EMULATE_FMA)
        return _fma(a11, w11, acc, EMULATE_FMA)
    else:
        wb0 = tl.broadcast_to(w0[None, :], shape)
        wb1 = tl.broadcast_to(w1[None, :], shape)
        t0 = _fma(a00, wb0, a01 * wb1, EMULATE_FMA)
        t1 = _fma(a10, wb0, a11 * wb1, EMULATE_FMA)
        return _fma(t0, tl.broadcast_to(h0[:, None], shape), t1 * tl.broadcast_to(h1[:, None], shape), EMULATE_FMA)


@triton.jit
def _select(hist, NUM_BINS: tl.constexpr, rank):
    """Digit holding the ``rank``-th largest key of a histogram, and the rank within that digit."""
    idx = tl.arange(0, NUM_BINS)
    counts = tl.load(hist + idx)
    above = tl.sum(counts, 0) - tl.cumsum(counts, 0)  # keys with a larger digit
    digit = tl.max(tl.where((above < rank) & (above + counts >= rank), idx, -1), 0)
    return digit, rank - tl.sum(tl.where(idx == digit, above, 0), 0)


@triton.jit
def _reduce_kernel(feat, low, hist, C, HW, BLOCK_C: tl.constexpr, BLOCK_P: tl.constexpr, HIST_WORDS: tl.constexpr):
    """A_low[b, p] = sum_c feat[b, c, p]^2 in fp32; program (b, 0) also zeroes hist[b]."""
    b = tl.program_id(0).to(tl.int64)
    tile = tl.program_id(1)
    offs = tile * BLOCK_P + tl.arange(0, BLOCK_P)
    inside = offs < HW
    chans = tl.arange(0, BLOCK_C)
    base = feat + b * C * HW
    acc = tl.zeros((BLOCK_C, BLOCK_P), dtype=tl.float32)
    for c0 in range(0, C, BLOCK_C):
        cs = c0 + chans
        m = tl.load(base + cs[:, None] * HW + offs[None, :], mask=(cs < C)[:, None] & inside[None, :], other=0.0)
        m = m.to(tl.float32)
        acc += m * m
    tl.store(low + b * HW + offs, tl.sum(acc, 0), mask=inside)
    if tile == 0:
        words = tl.arange(0, HIST_WORDS)
        tl.store(hist + b * HIST_WORDS + words, tl.zeros_like(words))


@triton.jit
def _hist_kernel(low, hist, state, k, h, w, H, W, scale_h, scale_w, rows,
                 PASS: tl.constexpr, BLOCK_Y: tl.constexpr, BLOCK_X: tl.constexpr,
                 CL_ORDER: tl.constexpr, EMULATE_FMA: tl.constexpr, HIST_WORDS: tl.constexpr,
                 STATE_WORDS: tl.constexpr, TOP_BINS: tl.constexpr, LOW_BITS: tl.constexpr):
    """One radix pass: histogram of one 11/10/10-bit digit of the resized values in a band of rows."""
    b = tl.program_id(0).to(tl.int64)
    band = tl.program_id(1)
    LOW_BINS: tl.constexpr = 1 << LOW_BITS
    hist_b = hist + b * HIST_WORDS
    state_b = state + b * STATE_WORDS
    if PASS == 0:
        NUM_BINS: tl.constexpr = TOP_BINS
        out = hist_b
    elif PASS == 1:
        NUM_BINS: tl.constexpr = LOW_BINS
        out = hist_b + TOP_BINS
        prefix, rank = _select(hist_b, TOP_BINS, k)
        if band == 0:
            tl.store(state_b, prefix)
            tl.store(state_b + 1, rank)
    else:
        NUM_BINS: tl.constexpr = LOW_BINS
        out = hist_b + TOP_BINS + LOW_BINS
        digit, rank = _select(hist_b + TOP_BINS, LOW_BINS, tl.load(state_b + 1))
        prefix = (tl.load(state_b) << LOW_BITS) + digit
        if band == 0:
            tl.store(state_b + 2, prefix)
            tl.store(state_b + 3, rank)
    low_b = low + b * h * w
    row0 = band * rows
    row1 = tl.minimum(row0 + rows, H)
    counts = tl.zeros((NUM_BINS,), dtype=tl.int32)
    for y in range(row0, row1, BLOCK_Y):
        ys = y + tl.arange(0, BLOCK_Y)
        for x in range(0, W, BLOCK_X):
            xs = x + tl.arange(0, BLOCK_X)
            inside = (ys < row1)[:, None] & (xs < W)[None, :]
            v = _resized(low_b, tl.minimum(ys, H - 1), tl.minimum(xs, W - 1), h, w, scale_h, scale_w,
                         CL_ORDER, EMULATE_FMA)
            key = v.to(tl.int32, bitcast=True) & 0x7FFFFFFF  # -0.0 counts as 0.0
            if PASS == 0:
                digits = key >> (2 * LOW_BITS)
                take = inside
            elif PASS == 1:
                digits = (key >> LOW_BITS) & (LOW_BINS - 1)
                take = inside & ((key >> (2 * LOW_BITS)) == prefix)
            else:
                digits = key & (LOW_BINS - 1)
                take = inside & ((key >> LOW_BITS) == prefix)
            counts += tl.histogram(tl.reshape(digits, [BLOCK_Y * BLOCK_X]), NUM_BINS,
                                   mask=tl.reshape(take, [BLOCK_Y * BLOCK_X]))
    bins = tl.arange(0, NUM_BINS)
    tl.atomic_add(out + bins, counts, mask=counts > 0, sem="relaxed")


@triton.jit
def _erase_kernel(images, erased, mask, fill, threshold, low, hist, state, CI, h, w, H, W, scale_h, scale_w, rows,
                  BLOCK_Y: tl.constexpr, BLOCK_X: tl.constexpr, CL_ORDER: tl.constexpr, EMULATE_FMA: tl.constexpr,
                  HIST_WORDS: tl.constexpr, STATE_WORDS: tl.constexpr, TOP_BINS: tl.constexpr,
                  LOW_BITS: tl.constexpr):
    """Final digit -> threshold t; mask = v >= t; masked pixels of every channel set to fill[c]."""
    b = tl.program_id(0).to(tl.int64)
    band = tl.program_id(1)
    LOW_BINS: tl.constexpr = 1 << LOW_BITS
    state_b = state + b * STATE_WORDS
    digit, _ = _select(hist + b * HIST_WORDS + TOP_BINS + LOW_BINS, LOW_BINS, tl.load(state_b + 3))
    t = ((tl.load(state_b + 2) << LOW_BITS) + digit).to(tl.float32, bitcast=True)
    if band == 0:
        tl.store(threshold + b, t)
    low_b = low + b * h * w
    plane = H * W
    row0 = band * rows
    row1 = tl.minimum(row0 + rows, H)
    for y in range(row0, row1, BLOCK_Y):
        ys = y + tl.arange(0, BLOCK_Y)
        for x in range(0, W, BLOCK_X):
            xs = x + tl.arange(0, BLOCK_X)
            inside = (ys < row1)[:, None] & (xs < W)[None, :]
            v = _resized(low_b, tl.minimum(ys, H - 1), tl.minimum(xs, W - 1), h, w, scale_h, scale_w,
                         CL_ORDER, EMULATE_FMA)
            hit = v >= t
            pix = ys[:, None] * W + xs[None, :]
            tl.store(mask + b * plane + pix, hit.to(tl.uint8), mask=inside)
            for c in range(CI):
                at = (b * CI + c) * plane + pix
                keep = tl.load(images + at, mask=inside & ~hit, other=0.0)
                tl.store(erased + at, tl.where(hit, tl.load(fill + c), keep), mask=inside)


def interpreter_active() -> bool:
    """True when the kernels run in Triton's CPU interpreter (TRITON_INTERPRET=1 when triton was imported).

    Triton fixes the mode per process at import: ``triton.language``'s own helpers and these kernels
    must agree, so a variable set between ``import triton`` and ``import kernels.fused_erase`` is refused.
    """
    kernels_interpreted = isinstance(_reduce_kernel, InterpretedFunction)
    if kernels_interpreted != isinstance(tl.zeros, InterpretedFunction):
        raise EraseError(
            "TRITON_INTERPRET changed between `import triton` and `import kernels.fused_erase`; "
            "set it before anything imports triton"
        )
    return kernels_interpreted


# --------------------------------------------------------------------------- host side


@dataclass(frozen=True)
class LaunchConfig:
    """Block sizes and grids the launcher uses for one problem shape (also what ``kernels.aot`` compiles)."""

    block_c: int
    block_p: int
    reduce_tiles: int
    block_y: int
    block_x: int
    hist_rows: int
    erase_rows: int
    cl_order: bool
    num_warps: int = 4


def _pow2_at_most(n: int, cap: int) -> int:
    return min(triton.next_power_of_2(max(n, 1)), cap)


def launch_config(B: int, C: int, h: int, w: int, H: int, W: int, *, interpret: bool = False) -> LaunchConfig:
    """Block sizes for a problem.

    On CUDA: a few hundred programs per launch, 1024-value blocks, ~4k (histogram) / ~2k (erase) values per
    program.  In the CPU interpreter every Triton op costs Python overhead, so blocks are 8x larger there
    (bands of two blocks, so the multi-band and multi-block paths still run).
    """
    hw = h * w
    block_values = 8192 if interpret else 1024
    block_p = _pow2_at_most(hw, 4096 if interpret else 256)
    while not interpret and block_p > 16 and B * triton.cdiv(hw, block_p) < 512:  # conv4/5: more, narrower tiles
        block_p //= 2
    block_c = max(1, min(triton.next_power_of_2(C), 4 * block_values // block_p))
    block_x = _pow2_at_most(W, 256)
    block_y = max(1, min(block_values // block_x, triton.next_power_of_2(H)))
    row_values = block_x * triton.cdiv(W, block_x)  # values one program covers per row, padding included
    if interpret:
        hist_rows = erase_rows = 2 * block_y
    else:
        hist_rows = block_y * max(1, 4096 // (block_y * row_values))
        erase_rows = block_y * max(1, 2048 // (block_y * row_values))
    return LaunchConfig(block_c, block_p, triton.cdiv(hw, block_p), block_y, block_x, hist_rows, erase_rows,
                        cl_order=H + W <= 128)


def bytes_moved(B: int, C: int, h: int, w: int, H: int, W: int, feature_dtype: torch.dtype,
                image_dtype: torch.dtype = torch.float32, image_channels: int = 3) -> int:
    """Global-memory bytes the five launches move (upper bound: every image pixel is read).

    features read once; A_low written once and read by 3 histogram passes + the erase pass;
    histogram rows zeroed, read back by the next pass (<= 3 scans) and updated; images read and written once;
    the bool mask written once.  Masked pixels are not read, so the true image read is (1 - R%) of this.
    """
    f_size = torch.empty((), dtype=feature_dtype).element_size()
    i_size = torch.empty((), dtype=image_dtype).element_size()
    features = B * C * h * w * f_size
    low = B * h * w * 4 * (1 + 4)
    hist = B * HIST_WORDS * 4 * 3 + B * STATE_WORDS * 4 * 2
    images = 2 * B * image_channels * H * W * i_size
    mask = B * H * W
    return features + low + hist + images + mask


def _check(features: torch.Tensor, images: torch.Tensor) -> None:
    if features.dim() != 4 or images.dim() != 4 or features.shape[0] != images.shape[0]:
        raise EraseError(
            f"features {tuple(features.shape)} and images {tuple(images.shape)} "
            "must both be 4-d with the same batch size"
        )
    if features.device != images.device:
        raise EraseError(f"features are on {features.device} but images on {images.device}; move both to one device")
    if images.shape[-2] * images.shape[-1] < 2:
        raise EraseError(f"images of size {tuple(images.shape[-2:])} have fewer than 2 pixels; nothing to rank")
    if features.shape[-2] * features.shape[-1] == 0 or features.shape[1] == 0:
        raise EraseError(f"features {tuple(features.shape)} are empty; pass the activations of a conv layer")


def erase_with_threshold(
    features: torch.Tensor, images: torch.Tensor, ratio: float, fill: Fill = 0.0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``attention_erase_triton`` plus the per-image threshold t (B,) fp32 (the k-th largest resized value)."""
    _check(features, images)
    B, C, h, w = features.shape
    CI, H, W = images.shape[1:]
    k = num_erased(ratio, H * W)
    if images.device.type != "cuda" and not interpreter_active():
        raise EraseError(
            "the Triton erase runs on CPU only in Triton's interpreter: set TRITON_INTERPRET=1 before anything "
            "imports triton, or use the reference backend"
        )
    if features.dtype not in _FEATURE_DTYPES:
        features = features.float()  # the reference's own first step
    features = features.contiguous()
    images = images.contiguous()
    device = images.device
    erased = torch.empty_like(images)
    mask = torch.empty((B, H, W), dtype=torch.bool, device=device)
    threshold = torch.empty((B,), dtype=torch.float32, device=device)
    if B == 0:
        return erased, mask, threshold
    fills = fill_tensor(fill, CI, images).contiguous()
    low = torch.empty((B, h * w), dtype=torch.float32, device=device)
    hist = torch.empty((B, HIST_WORDS), dtype=torch.int32, device=device)
    state = torch.empty((B, STATE_WORDS), dtype=torch.int32, device=device)
    interpret = interpreter_active()
    cfg = launch_config(B, C, h, w, H, W, interpret=interpret)
    scale_h = float(np.float32(h) / np.float32(H))  # ATen: float(input_size) / output_size, in fp32
    scale_w = float(np.float32(w) / np.float32(W))
    common = dict(CL_ORDER=cfg.cl_order, EMULATE_FMA=interpret, **RADIX)
    warps = {} if interpret else dict(num_warps=cfg.num_warps)
    _reduce_kernel[(B, cfg.reduce_tiles)](
        features, low, hist, C, h * w, BLOCK_C=cfg.block_c, BLOCK_P=cfg.block_p, HIST_WORDS=HIST_WORDS, **warps
    )
    for p in range(3):
        _hist_kernel[(B, triton.cdiv(H, cfg.hist_rows))](
            low, hist, state, k, h, w, H, W, scale_h, scale_w, cfg.hist_rows,
            PASS=p, BLOCK_Y=cfg.block_y, BLOCK_X=cfg.block_x, **common, **warps,
        )
    _erase_kernel[(B, triton.cdiv(H, cfg.erase_rows))](
        images, erased, mask.view(torch.uint8), fills, threshold, low, hist, state, CI, h, w, H, W,
        scale_h, scale_w, cfg.erase_rows, BLOCK_Y=cfg.block_y, BLOCK_X=cfg.block_x, **common, **warps,
    )
    return erased, mask, threshold


def attention_erase_triton(
    features: torch.Tensor, images: torch.Tensor, ratio: float, fill: Fill = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Erase the top ``ratio`` % attention pixels with the fused kernels; same contract as the reference.

    Runs compiled on CUDA tensors and in the Triton interpreter on CPU tensors (slow; for tests).
    Non-contiguous inputs are copied to contiguous ones; float64 or integer activations are cast to
    fp32 first, exactly as the reference does.
    """
    erased, mask, _ = erase_with_threshold(features, images, ratio, fill)
    return erased, mask
