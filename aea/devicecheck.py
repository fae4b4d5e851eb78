"""One device check (issue 20): everything a short GPU loan should measure, in one prepared run.

``workflow/scripts/device-check.sh`` (or ``python -m aea.devicecheck``) runs five sections and writes one CSV,
``benchmarks/<device>/device-check-<UTC time>.csv``, tagged with the device name, driver, CUDA, torch and triton
versions, and prints a short summary:

  a. correctness  the kernel against the reference (tests/kernels/test_fused_erase.py: paper shape, Table-9
                  layers, odd sizes, fp32/bf16/fp16, ties, with its tolerances), the device tests of training
                  and metrics (tests/test_device.py) and the erasing tests, by pytest in a subprocess
  b. kernel       fused kernel vs eager reference at B = 32 and 128, bf16 and fp32, and the bytes-moved floor at
                  the measured copy bandwidth (CUDA; the reference alone elsewhere)
  c. training     ``paper`` profile AEA (fused erase, then erase_backend=reference) and Baseline 1 on generated
                  market-scale data with stand-in weights: iterations/s, images/s, peak memory, each part's share
  d. evaluation   market-scale test features of the AEA networks, ranking and both mAPs on the device
  e. input        images/s of the profile's loaders (per-image with its num_workers; cached uint8 augmented on
                  the device) against what step c consumes

Forms: ``full`` (CUDA, the paper's sizes; <= 8 minutes on one H100 is the goal) and ``reduced`` (any machine:
Triton's interpreter, the smoke profile's network and image size, tiny data, a few iterations; the test suite
runs it so the check never rots). Its training step times are the smoke shape's, so they serve ``aea plan``
for the small profiles; the full form run on a CPU (``--form full --sections train``) gives the paper step's
CPU time.
"""

from __future__ import annotations

import argparse
import datetime
import logging
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aea.benchmarks import DEFAULT_ROOT, arch_label, device_slug, write_rows
from aea.machine import cpu_model

log = logging.getLogger("aea.devicecheck")

SECTIONS = ("correctness", "kernel", "train", "evaluation", "input")
SPEEDUP_GOAL = 5.0  # fused kernel vs the eager reference (issue 6)
BANDWIDTH_GOAL = 2.0  # kernel time / (bytes moved / measured copy bandwidth)
#: Kernel test subset of the reduced form (interpreter: the whole file takes ~30 s on 2 cores): exact inputs at
#: the smoke size and in bf16, all-tie images included (integer_features), and the k = 1 / n - 1 extremes.
#: Of tests/test_device.py (in the default suite anyway) the reduced form runs the quick metrics test.
REDUCED_TESTS = ("test_exact_inputs_match_reference_bit_for_bit and (3-16-16-8 or 3-8-8-4) or extreme_ranks"
                 " or metrics_on_the_device")

#: What one H100 step consumes, estimated before any GPU figure exists: a published single-GPU ResNet-50 training
#: throughput, scaled by pixels to 256x128. The A100 figure is a floor for an H100 (faster in every MLPerf round).
PUBLISHED_RESNET50 = dict(
    images_per_s=2470.0, height=224, width=224, gpu="A100 80GB (1 GPU), mixed precision",
    source="NVIDIA DeepLearningExamples, PyTorch/Classification/ConvNets/resnet50v1.5/README.md, "
           "'Training performance: NVIDIA DGX A100 (8x A100 80GB)', 1 GPU, pytorch-21.03 NGC container",
)


@dataclass(frozen=True)
class Form:
    name: str
    synthetic: str  # generated Market-1501 size for sections c-e
    overrides: dict[str, Any] = field(default_factory=dict)  # over the paper profile (training, evaluation)
    kernel_shape: tuple[int, int, int, int, int] = (256, 64, 32, 256, 128)  # C, h, w, H, W
    kernel_batches: tuple[int, ...] = (32, 128)
    train_iters: int = 100
    warmup_iters: int = 10
    reference_iters: int = 40
    loader_images: int = 3200
    pytest_args: tuple[str, ...] = ("tests/kernels/test_fused_erase.py", "tests/test_device.py",
                                    "tests/test_erasing.py")


def _smoke_shape() -> dict[str, Any]:
    from aea.config import load_profile

    smoke = load_profile("smoke").defaults
    return {k: smoke[k] for k in ("arch", "base_width", "height", "width")}


def make_form(name: str) -> Form:
    if name == "full":
        return Form("full", "market-scale")
    if name == "reduced":
        # num_workers 0: starting worker processes would take longer than loading the tiny data set
        return Form("reduced", "tiny", {**_smoke_shape(), "pretrained": None, "num_workers": 0},
                    kernel_shape=(64, 16, 8, 64, 32), kernel_batches=(4,), train_iters=2, warmup_iters=1,
                    reference_iters=2, loader_images=64,
                    pytest_args=("tests/kernels/test_fused_erase.py", "tests/test_device.py", "-k", REDUCED_TESTS))
    raise ValueError(f"unknown form {name!r}; choose full or reduced")


# ------------------------------------------------------------------------------------------------ machine, timing
def machine_tags(device, form: str) -> dict[str, str]:
    """Tag columns of every row: device name and kind, driver, CUDA, torch, triton, commit, threads, date."""
    import torch

    from aea.evaluate import git_commit

    try:
        import triton

        triton_version = triton.__version__
    except ImportError:
        triton_version = ""
    driver = ""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        try:
            out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                 capture_output=True, text=True, timeout=30)
            driver = out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else ""
        except (OSError, subprocess.TimeoutExpired):
            driver = ""
    else:
        name = cpu_model()
    return dict(date=datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                device=device_slug(name, device.type), device_name=name, kind=device.type, driver=driver,
                cuda=torch.version.cuda or "", torch=torch.__version__, triton=triton_version,
                commit=git_commit(Path.cwd()), threads=str(torch.get_num_threads()), form=form)


def device_seconds(fn: Callable[[], Any], device, reps: int = 20, warmup: int = 3) -> float:
    """Mean seconds per call of ``fn`` over ``reps`` back-to-back calls after ``warmup`` calls: CUDA events on a
    GPU (the queue is not drained between calls), the wall clock elsewhere."""
    import torch

    for _ in range(warmup):
        fn()
    if device.type != "cuda":
        start = time.perf_counter()
        for _ in range(reps):
            fn()
        return (time.perf_counter() - start) / reps
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda.synchronize()
    start.record()
    for _ in range(reps):
        fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / 1e3 / reps


def copy_bandwidth(device, size: int = 512 << 20) -> float:
    """Device-to-device copy bandwidth in bytes/s (read + write of a ``size``-byte buffer)."""
    import torch

    src = torch.empty(size, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    return 2 * src.numel() / device_seconds(lambda: dst.copy_(src), device, reps=10)


def peak_memory_mib(device) -> float:
    """Peak memory since the last ``reset_peak``: allocated CUDA memory, or the process's resident high-water
    mark on a CPU (the whole process so far: ru_maxrss)."""
    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def row(section: str, name: str, value: float | int | str, unit: str, **extra: Any) -> dict[str, Any]:
    return {"section": section, "name": name, "value": value, "unit": unit, **extra}


# ----------------------------------------------------------------------------------------------- a. correctness
def correctness(form: Form, device) -> list[dict[str, Any]]:
    """pytest on the kernel, device and erasing tests in a subprocess (Triton's mode is fixed per process:
    compiled on CUDA, the interpreter elsewhere, as tests/conftest.py chooses); one row per test file."""
    with tempfile.TemporaryDirectory() as tmp:
        junit = Path(tmp) / "junit.xml"
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=--import-mode=importlib",
               f"--junitxml={junit}", *form.pytest_args]
        started = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True)
        seconds = time.perf_counter() - started
        if not junit.is_file():
            raise RuntimeError(f"pytest wrote no report (exit {done.returncode}): {done.stdout[-2000:]}"
                               f"{done.stderr[-2000:]}")
        cases = ET.parse(junit).getroot().iter("testcase")
        files: dict[str, dict[str, list[str]]] = {}
        for case in cases:
            file = case.get("classname", "").split(".")[-1] or "?"
            outcome = ("failed" if case.find("failure") is not None or case.find("error") is not None
                       else "skipped" if case.find("skipped") is not None else "passed")
            files.setdefault(file, {"passed": [], "failed": [], "skipped": []})[outcome].append(case.get("name", ""))
    rows = []
    for file, outcome in sorted(files.items()):
        note = f"{len(outcome['failed'])} failed, {len(outcome['skipped'])} skipped"
        if outcome["failed"]:
            note += ": " + " ".join(outcome["failed"])[:500]
        rows.append(row("correctness", f"{file} passed", len(outcome["passed"]), "tests", note=note))
        rows.append(row("correctness", f"{file} failed", len(outcome["failed"]), "tests"))
    rows.append(row("correctness", "pytest seconds", round(seconds, 2), "s", note=" ".join(form.pytest_args)))
    return rows


# ----------------------------------------------------------------------------------------------- b. kernel speed
def kernel_speed(form: Form, device) -> list[dict[str, Any]]:
    """Fused kernel vs eager reference (R = 20, fp32 images) per batch size and feature dtype; on CUDA also the
    bytes-moved floor at the measured copy bandwidth and both goals."""
    import torch

    from kernels.fused_erase import bytes_moved, interpreter_active
    from kernels.reference import attention_erase_reference

    C, h, w, H, W = form.kernel_shape
    ratio = 20.0
    compiled = device.type == "cuda" and not interpreter_active()
    rows = []
    bandwidth = copy_bandwidth(device) if compiled else None
    if bandwidth:
        rows.append(row("kernel", "copy bandwidth", round(bandwidth / 1e9, 1), "GB/s"))
    for B in form.kernel_batches:
        for dtype in (torch.bfloat16, torch.float32):
            g = torch.Generator().manual_seed(B)
            features = torch.randn(B, C, h, w, generator=g).relu().to(dtype).to(device)
            images = torch.randn(B, 3, H, W, generator=g).to(device)
            label = dict(batch=B, precision=str(dtype).replace("torch.", ""))
            reference_s = device_seconds(lambda f=features, x=images: attention_erase_reference(f, x, ratio), device,
                                         reps=20 if compiled else 3, warmup=3 if compiled else 1)
            rows.append(row("kernel", "reference", round(reference_s * 1e6, 1), "us", **label))
            moved = bytes_moved(B, C, h, w, H, W, dtype)
            rows.append(row("kernel", "bytes moved", moved, "B", **label))
            if not compiled:
                continue
            from kernels.fused_erase import attention_erase_triton

            kernel_s = device_seconds(lambda f=features, x=images: attention_erase_triton(f, x, ratio), device)
            floor_s = moved / bandwidth
            rows += [row("kernel", "fused", round(kernel_s * 1e6, 1), "us", **label),
                     row("kernel", "speedup", round(reference_s / kernel_s, 2), "x", note=f"goal >= {SPEEDUP_GOAL}",
                         **label),
                     row("kernel", "floor", round(floor_s * 1e6, 1), "us", **label),
                     row("kernel", "time over floor", round(kernel_s / floor_s, 2), "x",
                         note=f"goal <= {BANDWIDTH_GOAL}", **label)]
    return rows


# ------------------------------------------------------------------------------------------------ c. training
def paper_config(form: Form, method: str, data_root: Path, **overrides: Any):
    from aea.config import load_profile, resolve

    return resolve(load_profile("paper"), "market1501", method,
                   {**form.overrides, "data_root": str(data_root), **overrides}, 0)


def endless_batches(split, cfg, pixels, device) -> Iterator[dict]:
    """The cached loader's batches, epoch after epoch, on ``device`` as training moves them (``as_device``)."""
    from aea.data.loaders import build_train_loader
    from aea.train import as_device

    epoch = 0
    while True:
        yield from as_device(build_train_loader(split.train, p=cfg.batch_p, k=cfg.batch_k, height=cfg.height,
                                                width=cfg.width, seed=cfg.seed, epoch=epoch, pad=cfg.pad,
                                                flip=cfg.flip, pixels=pixels), device)
        epoch += 1


def time_training(cfg, split, device, pixels, iters: int, warmup: int) -> tuple[dict[str, float], Any]:
    """``iters`` training steps of ``cfg`` (after ``warmup`` steps) exactly as ``aea.train.train`` runs them
    (joint phase, AMP per the config, batches of the cached loader): mean seconds per part and per step (the
    device is synchronised between parts), peak memory. Returns (figures, model)."""
    import torch

    from aea.device import device_clock, place
    from aea.methods import get_method
    from aea.models.aea import build_networks
    from aea.seeding import derive_seed
    from aea.train import make_optimizer, run_erasing, training_step

    method = get_method(cfg.method, cfg.peer_form)
    torch.manual_seed(0)
    model = place(build_networks(cfg, split.num_train_pids, pretrained=cfg.pretrained), device)
    optimizer = make_optimizer(cfg, model)
    strategy = run_erasing(cfg, method, split, None, None, device)
    batches = endless_batches(split, cfg, pixels, device)
    use_amp = cfg.amp and device.type == "cuda"
    model.train()
    parts: dict[str, list[float]] = {}
    reset_peak(device)
    for i in range(warmup + iters):
        t0 = device_clock(device)
        batch = next(batches)
        t1 = device_clock(device)
        generator = torch.Generator(device=device).manual_seed(derive_seed(cfg.seed, 0, i, 1))
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
            loss, _, erase_s = training_step(cfg, method, model, strategy, batch, joint=True, generator=generator,
                                             complementary_seed=derive_seed(cfg.seed, 0, i, 2))
        t2 = device_clock(device)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        t3 = device_clock(device)
        optimizer.step()
        t4 = device_clock(device)
        if not torch.isfinite(loss):
            raise RuntimeError(f"{cfg.method}: loss {loss.item()} at step {i}")
        if i < warmup:
            continue
        for name, seconds in (("data", t1 - t0), ("forward and losses", t2 - t1 - erase_s), ("erase", erase_s),
                              ("backward", t3 - t2), ("optimiser", t4 - t3), ("step", t4 - t0)):
            parts.setdefault(name, []).append(seconds)
    figures = {name: sum(v) / len(v) for name, v in parts.items()}  # means: the parts add up to the step
    figures["peak memory"] = peak_memory_mib(device)
    return figures, model


def train_speed(form: Form, device, split, data_root: Path, pretrained: str | None
                ) -> tuple[list[dict[str, Any]], dict[str, float], Any]:
    """AEA (erase_backend auto: the kernel on CUDA), AEA with the reference erase, Baseline 1. Returns (rows,
    loaded images/s per method, the AEA model for section d)."""
    from aea.data.loaders import preload_pixels
    from aea.methods import get_method

    rows, consumed, aea_model = [], {}, None
    cfg0 = paper_config(form, "aea", data_root)
    pixels = preload_pixels(split.train, cfg0.height, cfg0.width).to(device)
    runs = [("aea", "auto", form.train_iters), ("aea", "reference", form.reference_iters),
            ("baseline1", "auto", form.train_iters)]
    if device.type != "cuda":  # erase_backend=auto is the reference off CUDA: nothing to compare
        runs.pop(1)
    for method, backend, iters in runs:
        over = {"erase_backend": backend} if backend != "auto" else {}
        if pretrained is not None:
            over["pretrained"] = pretrained
        cfg = paper_config(form, method, data_root, **over)
        figures, model = time_training(cfg, split, device, pixels, iters, min(form.warmup_iters, iters))
        batch = cfg.batch_p * cfg.batch_k
        label = dict(profile="paper", method=method if backend == "auto" else f"{method} erase_backend={backend}",
                     arch=arch_label(cfg.arch, cfg.base_width), height=cfg.height, width=cfg.width, batch=batch,
                     precision="bf16 autocast" if cfg.amp and device.type == "cuda" else "fp32")
        step = figures["step"]
        rows += [row("train", "step seconds", round(step, 5), "s", note=f"mean of {iters} steps", **label),
                 row("train", "iterations per second", round(1 / step, 3), "it/s", **label),
                 row("train", "images per second", round(batch / step, 1), "images/s",
                     note="loaded images" + (", each also erased for the complementary network"
                                             if get_method(method).two_networks else ""), **label),
                 row("train", "peak memory", round(figures["peak memory"], 1), "MiB",
                     note="allocated" if device.type == "cuda" else "process resident high-water mark", **label)]
        for part in ("data", "forward and losses", "erase", "backward", "optimiser"):
            rows.append(row("train", f"share {part}", round(figures[part] / figures["step"], 4), "fraction",
                            note=f"mean {figures[part] * 1e3:.2f} ms of a {step * 1e3:.2f} ms step",
                            **label))
        if backend == "auto":
            consumed[method] = batch / step
        if method == "aea":
            if backend == "auto":
                aea_model, aea_step, aea_erase = model, step, figures["erase"]
            else:
                rows += [row("train", "kernel end-to-end gain", round(step / aea_step, 3), "x",
                             note="AEA step with erase_backend=reference over the step with the default backend",
                             **{**label, "method": "aea"}),
                         row("train", "erase gain", round(figures["erase"] / max(aea_erase, 1e-9), 2), "x",
                             note="mean erase time, reference over default backend", **{**label, "method": "aea"})]
    return rows, consumed, aea_model


# ---------------------------------------------------------------------------------------------- d. evaluation
def evaluation_speed(form: Form, device, split, data_root: Path, model) -> list[dict[str, Any]]:
    """Test features of every query and gallery image by the AEA networks, then ranking and both mAPs."""
    import torch

    from aea.device import device_clock
    from aea.evaluate import extract_features, feature_fn, pids_cams
    from aea.metrics import evaluate_features

    cfg = paper_config(form, "aea", data_root)
    if model is None:  # section c did not run: freshly initialised networks compute features as fast
        from aea.device import place
        from aea.models.aea import build_networks

        model = place(build_networks(cfg, split.num_train_pids, pretrained=None), device)
    model.eval()
    fn = feature_fn(model, "concat", cfg.test_feature_norm)
    use_amp = cfg.amp and device.type == "cuda"
    start = device_clock(device)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
        feats = [extract_features(fn, records, height=cfg.height, width=cfg.width, batch_size=cfg.eval_batch_size,
                                  num_workers=cfg.num_workers, device=device)
                 for records in (split.query, split.gallery)]
    features_s = device_clock(device) - start
    (q_pids, q_cams), (g_pids, g_cams) = pids_cams(split.query), pids_cams(split.gallery)
    start = device_clock(device)
    result = evaluate_features(feats[0].to(device), feats[1].to(device), q_pids, g_pids, q_cams, g_cams)
    ranking_s = device_clock(device) - start
    images = len(split.query) + len(split.gallery)
    label = dict(profile="paper", method="aea", arch=arch_label(cfg.arch, cfg.base_width), height=cfg.height,
                 width=cfg.width, batch=cfg.eval_batch_size, precision="bf16 autocast" if use_amp else "fp32")
    return [row("evaluation", "test images", images, "images", **label),
            row("evaluation", "feature seconds", round(features_s, 2), "s",
                note=f"two networks, test loader with num_workers={cfg.num_workers}", **label),
            row("evaluation", "feature images per second", round(images / features_s, 1), "images/s", **label),
            row("evaluation", "ranking seconds", round(ranking_s, 3), "s",
                note=f"{len(split.query)} x {len(split.gallery)}, CMC and both mAPs", **label),
            row("evaluation", "mAP official", round(result.map_official, 4), "fraction",
                note="stand-in weights, a few steps: chance level expected", **label),
            row("evaluation", "mAP non-interpolated", round(result.map_noninterp, 4), "fraction", **label)]


# --------------------------------------------------------------------------------------------- e. input pipeline
def loader_speed(split, cfg, device, images: int, num_workers: int | None = None) -> dict[str, float]:
    """Images/s of the training loaders on ``cfg``'s sizes: per image (decode, resize, normalise, pad/crop, flip
    in ``num_workers`` worker processes, default the config's) and cached (``preload_pixels`` once, then a gather
    and ``augment_batch`` per batch on ``device``); the seconds to fill the cache, per image."""
    import torch

    from aea.data.loaders import build_train_loader, preload_pixels
    from aea.device import device_clock

    def rate(pixels, workers: int) -> float:
        done, epoch, start = 0, 0, None
        while done < images:
            loader = build_train_loader(split.train, p=cfg.batch_p, k=cfg.batch_k, height=cfg.height,
                                        width=cfg.width, seed=cfg.seed, epoch=epoch, num_workers=workers,
                                        pad=cfg.pad, flip=cfg.flip, pixels=pixels)
            for batch in loader:
                if start is None:  # the first batch pays the workers' start: not counted
                    start = device_clock(device)
                    continue
                batch["images"].to(device, non_blocking=True)
                done += len(batch["images"])
            epoch += 1
        return done / (device_clock(device) - start)

    workers = cfg.num_workers if num_workers is None else num_workers
    per_image = rate(None, workers)
    start = time.perf_counter()
    pixels = preload_pixels(split.train, cfg.height, cfg.width).to(device)
    fill_s = (time.perf_counter() - start) / len(split.train)
    cached = rate(pixels, 0)
    del pixels
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return {"per-image": per_image, "cached": cached, "fill": fill_s, "workers": workers}


def published_consumption(height: int, width: int) -> dict[str, float]:
    """Images/s one GPU step consumes, from ``PUBLISHED_RESNET50`` scaled by pixels to (height, width): a
    one-network step (Baseline 1) takes that many loaded images/s; a two-network step (AEA) half (each loaded
    image passes through both networks, once erased)."""
    passes = PUBLISHED_RESNET50["images_per_s"] * PUBLISHED_RESNET50["height"] * PUBLISHED_RESNET50["width"] / (
        height * width)
    return {"baseline1": passes, "aea": passes / 2}


def input_speed(form: Form, device, split, data_root: Path, consumed: dict[str, float]) -> list[dict[str, Any]]:
    cfg = paper_config(form, "aea", data_root)
    speed = loader_speed(split, cfg, device, form.loader_images)
    label = dict(profile="paper", height=cfg.height, width=cfg.width, batch=cfg.batch_p * cfg.batch_k)
    rows = [row("input", "per-image loader", round(speed["per-image"], 1), "images/s",
                note=f"num_workers={speed['workers']}: decode, resize, normalise, pad/crop, flip", **label),
            row("input", "cached loader", round(speed["cached"], 1), "images/s",
                note=f"uint8 cache on {device.type}, gather + augment_batch", **label),
            row("input", "cache fill", round(speed["fill"] * 1e3, 3), "ms/image", note="decode + resize, once",
                **label)]
    for method, need in consumed.items():
        for loader in ("per-image", "cached"):
            rows.append(row("input", f"{loader} loader over {method} consumption", round(speed[loader] / need, 2),
                            "x", method=method, note=f"{method} step consumes {need:.0f} images/s here", **label))
    return rows


# ------------------------------------------------------------------------------------------------------ driver
def start_data(form: Form, work: Path) -> tuple[Path, subprocess.Popen | None]:
    """Generate the form's Market-1501 under ``work`` in a background process (market-scale takes minutes on one
    core: it runs while sections a and b use the GPU); None when it is there already."""
    root = work / f"data-{form.synthetic}"
    if (root / ".device-check.done").is_file():
        return root, None
    code = ("import sys; from pathlib import Path; from aea.data.synthetic import make_synthetic; "
            "make_synthetic('market1501', Path(sys.argv[1]), size=sys.argv[2], seed=0); "
            "(Path(sys.argv[1]) / '.device-check.done').touch()")
    return root, subprocess.Popen([sys.executable, "-c", code, str(root), form.synthetic])


def finish_data(root: Path, generating: subprocess.Popen | None) -> Any:
    from aea.data.datasets import load_dataset

    if generating is not None and generating.wait() != 0:
        raise RuntimeError(f"generating the data under {root} failed (exit {generating.returncode})")
    return load_dataset("market1501", root, check_counts=False)


def run_check(form: Form, device, sections: tuple[str, ...], work: Path, out_root: Path) -> tuple[Path, list[dict]]:
    """Run ``sections`` and write the CSV; returns (its path, the rows)."""
    rows: list[dict[str, Any]] = []
    tags = machine_tags(device, form.name)
    started = time.perf_counter()
    load = os.getloadavg()[0]  # other work on the machine slows every figure: recorded beside them

    def timed(section: str, fn: Callable[[], list[dict[str, Any]]]) -> None:
        t = time.perf_counter()
        log.info("device check: %s ...", section)
        rows.extend(fn())
        rows.append(row(section, "section seconds", round(time.perf_counter() - t, 2), "s"))

    needs_data = {"train", "evaluation", "input"} & set(sections)
    if needs_data:
        data_root, generating = start_data(form, work)
    if "correctness" in sections:
        timed("correctness", lambda: correctness(form, device))
    if "kernel" in sections:
        timed("kernel", lambda: kernel_speed(form, device))
    if needs_data:
        t = time.perf_counter()
        split = finish_data(data_root, generating)
        rows.append(row("data", "wait for data seconds", round(time.perf_counter() - t, 2), "s",
                        note=f"generated {form.synthetic} beside sections a-b: {len(split.train)} train, "
                             f"{len(split.query)} query, {len(split.gallery)} gallery images"))
    consumed: dict[str, float] = {}
    model = None
    if "train" in sections:
        pretrained = None
        if form.overrides.get("pretrained", "torchvision-cache") is not None:
            from aea.models.backbone import write_stand_in_weights

            pretrained = str(write_stand_in_weights(work / "resnet50-stand-in.pth", "resnet50", 0))

        def train_rows() -> list[dict[str, Any]]:
            nonlocal consumed, model
            out, consumed, model = train_speed(form, device, split, data_root, pretrained)
            return out

        timed("train", train_rows)
    if "evaluation" in sections:
        timed("evaluation", lambda: evaluation_speed(form, device, split, data_root, model))
    if "input" in sections:
        timed("input", lambda: input_speed(form, device, split, data_root, consumed))
    rows.append(row("total", "seconds", round(time.perf_counter() - started, 1), "s", note=",".join(sections)))
    rows.append(row("machine", "load average", f"{load:.2f} / {os.getloadavg()[0]:.2f}", "processes",
                    note=f"1-minute load at start / end, {os.cpu_count()} CPUs: above the CPU count other work "
                         "shared the machine and the times are high"))
    stamp = re.sub(r"[-:]", "", tags["date"])
    path = write_rows(rows, tags, out_root / tags["device"] / f"device-check-{form.name}-{stamp}.csv")
    return path, rows


def summary(rows: list[dict[str, Any]], tags_line: str) -> str:
    """A short text summary of the rows: failures first, then the headline figures."""
    lines = [tags_line]
    failed = sum(int(r["value"]) for r in rows if r["section"] == "correctness" and r["name"].endswith(" failed"))
    passed = sum(int(r["value"]) for r in rows if r["section"] == "correctness" and r["name"].endswith(" passed"))
    if any(r["section"] == "correctness" for r in rows):
        lines.append(f"correctness: {passed} tests passed, {failed} failed")
    shown = {("kernel", "speedup"), ("kernel", "time over floor"), ("train", "iterations per second"),
             ("train", "images per second"), ("train", "peak memory"), ("train", "share erase"),
             ("train", "kernel end-to-end gain"), ("evaluation", "feature seconds"), ("evaluation", "ranking seconds"),
             ("input", "per-image loader"), ("input", "cached loader"), ("total", "seconds")}
    for r in rows:
        if (r["section"], r["name"]) in shown or r["name"].endswith("consumption"):
            what = " ".join(str(r.get(k, "")) for k in ("method", "batch", "precision") if r.get(k, "") != "")
            lines.append(f"{r['section']:<11} {r['name']:<40} {r['value']:>10} {r['unit']:<9} {what}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aea.devicecheck", description=__doc__.splitlines()[0])
    parser.add_argument("--form", choices=("full", "reduced"), default=None,
                        help="full (default with CUDA): the paper's sizes; reduced (default without): interpreter, "
                             "smoke shapes, tiny data")
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated subset of {SECTIONS}")
    parser.add_argument("--iters", type=int, default=None, help="training steps per method (default: the form's)")
    parser.add_argument("--work", default=None, help="folder for generated data (default: a temporary folder)")
    parser.add_argument("--out", default=str(DEFAULT_ROOT), help="benchmarks root (default: benchmarks)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    import torch

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    form = make_form(args.form or ("full" if device.type == "cuda" else "reduced"))
    if args.iters is not None:
        form = Form(**{**form.__dict__, "train_iters": args.iters, "reference_iters": args.iters,
                       "warmup_iters": min(form.warmup_iters, args.iters)})
    sections = tuple(s for s in args.sections.split(",") if s)
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown sections {unknown}; choose from {SECTIONS}")
    if form.name == "full" and device.type != "cuda":
        log.warning("full form without CUDA: the paper's sizes on the CPU (slow; use --sections train --iters 2)")
    with tempfile.TemporaryDirectory(prefix="aea-device-check-") as tmp:
        work = Path(args.work) if args.work else Path(tmp)
        path, rows = run_check(form, device, sections, work, Path(args.out))
    tags = machine_tags(device, form.name)
    print(summary(rows, f"device check ({form.name}) on {tags['device_name']} [{tags['kind']}], driver "
                        f"{tags['driver'] or '-'}, CUDA {tags['cuda'] or '-'}, torch {tags['torch']}, "
                        f"triton {tags['triton'] or '-'}: {path}"))
    failed = any(r["section"] == "correctness" and r["name"].endswith(" failed") and int(r["value"]) for r in rows)
    return 1 if failed else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
