"""Images/s of the paper profile's training loaders on this machine's CPU cores, against what one GPU step takes.

``pytest tests/benchmarks/test_loader_speed.py --benchmark-only -s``. Generated Market-1501 images (128x64 JPEG,
as the release's) at the paper's 256x128, P x K = 8 x 4 (32 images loaded a step; the complementary network gets
their erased copies, so a step puts 64 images through the networks):

  per-image  decode, resize, normalise, pad/crop, flip per image in DataLoader workers (0, 2 and the profile's 4)
  cached     uint8 images decoded once (``cache_images``, the paper profile's setting), then per batch one gather
             and ``augment_batch``, here on the CPU (on a GPU: on the device)

and what a GPU step consumes, estimated from the published ResNet-50 training throughput scaled by pixels
(``aea.devicecheck.PUBLISHED_RESNET50``, with its source). The figures are written by this test to
``benchmarks/<cpu>/loader-<UTC time>.csv`` (docs/gpu.md). Goal: the cached loader at least 3x the per-image
loader with no workers, on the same cores.
"""

from __future__ import annotations

import os
import re

import pytest
import torch

from aea.benchmarks import DEFAULT_ROOT, write_rows
from aea.config import load_profile, resolve
from aea.data.datasets import load_dataset
from aea.data.synthetic import make_synthetic
from aea.devicecheck import PUBLISHED_RESNET50, loader_speed, machine_tags, published_consumption, row

CACHED_GOAL = 3.0
IMAGES = 1600  # loaded images per measurement (50 batches)


def test_loader_images_per_second(benchmark, tmp_path):
    make_synthetic("market1501", tmp_path, size="smoke", seed=0)
    split = load_dataset("market1501", tmp_path, check_counts=False)
    cfg = resolve(load_profile("paper"), "market1501", "aea", {"data_root": str(tmp_path)}, 0)
    device = torch.device("cpu")

    def measure() -> dict[int, dict[str, float]]:
        return {workers: loader_speed(split, cfg, device, IMAGES, num_workers=workers)
                for workers in sorted({0, 2, cfg.num_workers})}

    speeds = benchmark.pedantic(measure, rounds=1, iterations=1)
    need = published_consumption(cfg.height, cfg.width)
    label = dict(profile="paper", height=cfg.height, width=cfg.width, batch=cfg.batch_p * cfg.batch_k)
    rows = [row("input", "per-image loader", round(s["per-image"], 1), "images/s",
                note=f"num_workers={w}: decode, resize, normalise, pad/crop (pad={cfg.pad}), flip, collate", **label)
            for w, s in speeds.items()]
    cached = [s["cached"] for s in speeds.values()]
    rows += [row("input", "cached loader", round(max(cached), 1), "images/s",
                 note=f"uint8 cache on the CPU, gather + augment_batch (best of {len(cached)})", **label),
             row("input", "cache fill", round(speeds[0]["fill"] * 1e3, 3), "ms/image", note="decode + resize, once",
                 **label)]
    source = (f"ESTIMATE: {PUBLISHED_RESNET50['images_per_s']:.0f} images/s ResNet-50 training at "
              f"{PUBLISHED_RESNET50['height']}x{PUBLISHED_RESNET50['width']}, {PUBLISHED_RESNET50['gpu']} "
              f"({PUBLISHED_RESNET50['source']}), scaled by pixels; an H100 is faster")
    for method, images_per_s in need.items():
        rows.append(row("input", "GPU step consumption", round(images_per_s, 1), "images/s", method=method,
                        note=f"{'two networks: half' if method == 'aea' else 'one network'}; {source}", **label))
        for w, s in speeds.items():
            rows.append(row("input", f"per-image loader (num_workers={w}) over {method} consumption",
                            round(s["per-image"] / images_per_s, 3), "x", method=method, **label))
        rows.append(row("input", f"cached loader over {method} consumption", round(max(cached) / images_per_s, 3),
                        "x", method=method, **label))
    rows.append(row("machine", "load average", f"{os.getloadavg()[0]:.2f}", "processes",
                    note=f"1-minute load after the measurement, {os.cpu_count()} CPUs (other work slows the loaders)"))
    tags = machine_tags(device, "benchmark")
    path = write_rows(rows, tags, DEFAULT_ROOT / tags["device"] / f"loader-{re.sub(r'[-:]', '', tags['date'])}.csv")
    benchmark.extra_info.update({f"per_image_workers_{w}": s["per-image"] for w, s in speeds.items()},
                                cached=max(cached), csv=str(path))
    print(f"\n{tags['device_name']}, {tags['threads']} threads -> {path}")
    for r in rows:
        print(f"  {r['name']:<60} {r['value']:>10} {r['unit']:<9} {r.get('method', '')}")
    assert max(cached) >= CACHED_GOAL * speeds[0]["per-image"]
    assert pytest.approx(need["aea"] * 2) == need["baseline1"]
