"""Measured figures as CSV files under ``benchmarks/<device>/``, one row per figure, tagged with the machine.

Written by code only: the device check (``aea.devicecheck``, ``workflow/scripts/device-check.sh``) and the
benchmarks in ``tests/benchmarks/``. Read by ``aea plan`` (``aea.plan``), which projects a target's cost from
the step times measured on each device and names the device and date of every figure it uses.

Nothing here imports torch: ``aea plan`` reads these files without it.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from aea.io import atomic_path

#: The machine (tags) and what was measured (figure); every CSV has these columns in this order.
TAG_COLUMNS = ("date", "device", "device_name", "kind", "driver", "cuda", "torch", "triton", "commit", "threads",
               "form")
FIGURE_COLUMNS = ("section", "name", "value", "unit", "profile", "method", "arch", "height", "width", "batch",
                  "precision", "note")
COLUMNS = TAG_COLUMNS + FIGURE_COLUMNS
DEFAULT_ROOT = Path("benchmarks")


def device_slug(name: str, kind: str) -> str:
    """Folder name of a device: ``nvidia-h100-80gb-hbm3``; a CPU is prefixed: ``cpu-amd-epyc``."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "unknown"
    return slug if kind == "cuda" or slug.startswith("cpu") else f"cpu-{slug}"


def arch_label(arch: str, base_width: int) -> str:
    """The network as the ``arch`` column names it: ``resnet50``, or ``resnet10 width 16`` for a narrowed trunk."""
    return arch if base_width == 64 else f"{arch} width {base_width}"


def write_rows(rows: Iterable[Mapping[str, Any]], tags: Mapping[str, Any], path: str | Path) -> Path:
    """Write ``rows`` (figure columns) with ``tags`` (tag columns) to ``path`` at once (temp file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    unknown = sorted({k for row in rows for k in row} - set(FIGURE_COLUMNS))
    if unknown:
        raise ValueError(f"unknown benchmark columns {unknown}; use {FIGURE_COLUMNS}")
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({**{k: "" for k in COLUMNS}, **dict(tags), **row})
    return path


def read_rows(root: str | Path = DEFAULT_ROOT) -> list[dict[str, str]]:
    """Every row of every ``<root>/<device>/*.csv`` with the benchmark columns, with ``file`` added; sorted by
    date, so a later measurement of the same figure comes last."""
    rows: list[dict[str, str]] = []
    for path in sorted(Path(root).glob("*/*.csv")):
        with open(path, newline="") as fh:
            reader = csv.DictReader(fh)
            if not set(COLUMNS) <= set(reader.fieldnames or ()):
                continue  # not one of ours
            rows += [{**row, "file": str(path)} for row in reader]
    return sorted(rows, key=lambda r: r["date"])
