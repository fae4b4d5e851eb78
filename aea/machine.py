"""What machine a run ran on, in enough detail to explain why its digits differ from another machine's.

Floating-point results depend on the CPU's vector kernels (torch picks them by CPU capability), the thread
count (the order of a reduction), the library versions and, on a GPU, the card. Verdicts are expected to
reproduce across machines within their error rate; digits are not (docs/statistics.md, "What reproduces across
machines").
"""

from __future__ import annotations

import platform
from functools import lru_cache
from pathlib import Path
from typing import Any

MACHINE_KEYS = ("cpu_model", "cpu_capability", "torch", "numpy", "threads", "gpu")


@lru_cache(maxsize=1)
def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo on Linux, else what ``platform`` says)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def machine_record(device: str = "cpu") -> dict[str, Any]:
    """The ``MACHINE_KEYS`` of this process: CPU model and torch's CPU capability, torch and numpy versions,
    torch's thread count, and the GPU's name when ``device`` is a CUDA device (else empty)."""
    import numpy
    import torch

    gpu = torch.cuda.get_device_name(torch.device(device)) if str(device).startswith("cuda") else ""
    return {"cpu_model": cpu_model(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "torch": torch.__version__, "numpy": numpy.__version__, "threads": torch.get_num_threads(), "gpu": gpu}


def machine_text(record: dict[str, Any]) -> str:
    """One line: ``Intel Xeon ... (AVX2), torch 2.14.1, numpy 2.3.1, 1 thread`` (+ ``, GPU <name>``)."""
    threads = record.get("threads")
    text = (f"{record.get('cpu_model', '?')} ({record.get('cpu_capability', '?')}), torch {record.get('torch', '?')},"
            f" numpy {record.get('numpy', '?')}, {threads} thread{'' if threads == 1 else 's'}")
    return text + (f", GPU {record['gpu']}" if record.get("gpu") else "")
