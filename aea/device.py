"""Where a run computes: the device choice, the honesty check of a job given a GPU, placement and clocks."""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch

from aea.config import RunConfig
from aea.errors import AEAError


def device_clock(device: torch.device) -> float:
    """``time.perf_counter()`` once ``device`` has finished its queued work: CUDA kernels run asynchronously,
    so a clock read right after a launch would time the launch, not the work."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def pick_device(name: str) -> torch.device:
    """``auto`` = CUDA when available, else CPU; an explicit CUDA request without CUDA is refused."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise AEAError(f"device={name} but no CUDA device is visible; use device=cpu or device=auto")
    return device


def given_gpu(gpus: int = 0) -> str | None:
    """What says this process was given a GPU, if anything: the workflow's ``--gpus`` (its gpus_per_run), or
    CUDA_VISIBLE_DEVICES naming devices (SLURM sets it to a job's GPUs)."""
    if gpus > 0:
        return f"--gpus {gpus}"
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").strip()
    if visible and visible not in ("-1", "NoDevFiles"):
        return f"CUDA_VISIBLE_DEVICES={visible}"
    return None


def training_device(cfg: RunConfig, gpus: int = 0) -> torch.device:
    """The device a run trains on. A process given a GPU (``given_gpu``) that CUDA cannot use is refused unless
    the run says device=cpu: device=auto would quietly train on the CPU, for days on a paper run."""
    given = given_gpu(gpus)
    if given and cfg.device != "cpu" and not torch.cuda.is_available():
        raise AEAError(f"this job was given a GPU ({given}) but CUDA is not usable here (torch {torch.__version__}, "
                       f"built for CUDA {torch.version.cuda or 'none'}): fix the node's driver or torch, or train on "
                       "the CPU on purpose with device=cpu")
    return pick_device(cfg.device)


def place(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """``model`` on ``device``; on the CPU in channels-last layout, where oneDNN's convolutions run 15-20% faster
    at small sizes (measured at 64x32, width 16) and compute the same function."""
    model = model.to(device)
    return model.to(memory_format=torch.channels_last) if device.type == "cpu" else model


def available_memory(device: torch.device) -> int | None:
    """Bytes free on ``device`` now (the CPU: Linux's MemAvailable); None where it cannot be told."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        lines = Path("/proc/meminfo").read_text().splitlines()
        return next(int(line.split()[1]) * 1024 for line in lines if line.startswith("MemAvailable:"))
    except (OSError, StopIteration, ValueError, IndexError):
        return None
