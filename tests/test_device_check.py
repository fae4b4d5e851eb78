"""The device check's reduced form (workflow/scripts/device-check.sh without CUDA) end to end, and the CSV it writes.

The full form needs a GPU (docs/gpu.md); this keeps every section's code running in the default suite: the
kernel and device tests through pytest, the kernel timing, training steps of AEA and Baseline 1 through the
paper profile (at the smoke shape), evaluation and both loaders, on the tiny generated Market-1501.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import triton

from aea.benchmarks import COLUMNS, read_rows
from aea.devicecheck import make_form, published_consumption, summary

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "workflow/scripts/device-check.sh"


@pytest.fixture(scope="module")
def check(tmp_path_factory) -> tuple[subprocess.CompletedProcess, list[dict[str, str]], Path]:
    out = tmp_path_factory.mktemp("benchmarks")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("TRITON_INTERPRET", None)  # the check's own pytest chooses the mode, as the suite does
    done = subprocess.run(["bash", str(SCRIPT), "--form", "reduced", "--out", str(out)], env=env, capture_output=True,
                          text=True, timeout=300)
    files = sorted(out.glob("*/device-check-reduced-*.csv"))
    assert done.returncode == 0 and len(files) == 1, done.stdout[-3000:] + done.stderr[-3000:]
    with open(files[0], newline="") as fh:
        return done, list(csv.DictReader(fh)), files[0]


def values(rows, section: str, name: str, **where: str) -> list[float]:
    return [float(r["value"]) for r in rows if r["section"] == section and r["name"] == name
            and all(r[k] == v for k, v in where.items())]


@pytest.mark.slow
def test_the_reduced_check_writes_one_tagged_csv(check):
    done, rows, path = check
    assert list(rows[0]) == list(COLUMNS)
    tags = {(r["kind"], r["torch"], r["triton"], r["form"], r["device"], r["cuda"]) for r in rows}
    assert tags == {("cpu", torch.__version__, triton.__version__, "reduced", path.parent.name,
                     torch.version.cuda or "")}
    assert path.parent.name.startswith("cpu-") and len({r["date"] for r in rows}) == 1
    assert {r["section"] for r in rows} == {"correctness", "kernel", "data", "train", "evaluation", "input", "total",
                                          "machine"}
    assert f"device check (reduced) on {rows[0]['device_name']} [cpu]" in done.stdout  # the printed summary
    assert read_rows(path.parent.parent) and all(r["file"] == str(path) for r in read_rows(path.parent.parent))


@pytest.mark.slow
def test_the_reduced_check_measures_plausible_values(check):
    _, rows, _ = check
    assert sum(values(rows, "correctness", "test_fused_erase failed")) == 0
    assert sum(values(rows, "correctness", "test_fused_erase passed")) >= 4  # exact inputs, ties, extreme ranks
    assert values(rows, "correctness", "test_device passed") == [1.0]
    form = make_form("reduced")
    assert {int(r["batch"]) for r in rows if r["section"] == "kernel" and r["batch"]} == set(form.kernel_batches)
    assert all(v > 0 for v in values(rows, "kernel", "reference"))
    for method in ("aea", "baseline1"):
        label = dict(method=method, profile="paper", arch="resnet10 width 16", height="64", width="32", batch="32")
        step, = values(rows, "train", "step seconds", **label)
        its, = values(rows, "train", "iterations per second", **label)
        images, = values(rows, "train", "images per second", **label)
        assert 0.001 < step < 60 and its == pytest.approx(1 / step, rel=1e-2)
        assert images == pytest.approx(32 / step, rel=1e-2)
        assert values(rows, "train", "peak memory", **label)[0] > 100  # MiB: torch alone is more
        shares = [values(rows, "train", f"share {part}", **label)[0]
                  for part in ("data", "forward and losses", "erase", "backward", "optimiser")]
        assert all(0 <= s <= 1 for s in shares) and sum(shares) == pytest.approx(1, abs=0.01)  # means add up
    assert values(rows, "train", "share erase", method="baseline1")[0] == 0  # one network: nothing erased
    assert values(rows, "train", "share erase", method="aea")[0] > 0
    assert values(rows, "evaluation", "test images") == [32 + 36]
    for name in ("mAP official", "mAP non-interpolated"):
        assert 0 < values(rows, "evaluation", name)[0] <= 1
    assert values(rows, "evaluation", "ranking seconds")[0] > 0
    per_image, = values(rows, "input", "per-image loader")
    cached, = values(rows, "input", "cached loader")
    assert per_image > 0 and cached > 0
    aea_images, = values(rows, "train", "images per second", method="aea")
    ratio, = values(rows, "input", "cached loader over aea consumption")
    assert ratio == pytest.approx(cached / aea_images, rel=0.02)


def test_the_published_consumption_scales_by_pixels_and_networks():
    need = published_consumption(256, 128)
    assert need["baseline1"] == pytest.approx(2470 * 224 * 224 / (256 * 128))  # 3,782 network passes a second
    assert need["aea"] == pytest.approx(need["baseline1"] / 2)


def test_the_summary_puts_failures_first():
    rows = [dict(section="correctness", name="test_x passed", value=3, unit="tests"),
            dict(section="correctness", name="test_x failed", value=1, unit="tests"),
            dict(section="train", name="iterations per second", value=2.5, unit="it/s", method="aea", batch=32)]
    lines = summary(rows, "head").splitlines()
    assert lines[:2] == ["head", "correctness: 3 tests passed, 1 failed"]
    assert "iterations per second" in lines[2] and "2.5" in lines[2] and "aea 32" in lines[2]
