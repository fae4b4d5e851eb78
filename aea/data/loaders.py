"""DataLoaders of the contract's batch dicts.

Train batches: ``images`` (B, 3, H, W) float ImageNet-normalised, ``pids``,
``camids``, ``indices`` (into the records) long, ``flipped`` bool; one loader
per epoch (``epoch`` is part of what seeds it).  Test batches: the same minus
``flipped``, no augmentation, in listing order.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from aea.data.datasets import Record
from aea.data.sampler import PKBatchSampler, Sample
from aea.data.transforms import _MEAN, _STD, TrainTransform, load_image, resized_pixels, to_normalized_tensor
from aea.seeding import derive_seed, seed_everything

#: Decoded image sets a process keeps (uint8, per set at most this many bytes): a job that trains several seeds
#: (the profile's group_seeds) decodes its training and test images once, not once per run and evaluation.
DECODED_CACHE_BYTES = 256 * 2**20


def fits_decoded_cache(images: int, height: int, width: int) -> bool:
    """Whether a set of ``images`` decoded at height x width (uint8) is small enough for the process to keep."""
    return images * 3 * height * width <= DECODED_CACHE_BYTES


def preload_pixels(records: Sequence[Record], height: int, width: int) -> torch.Tensor:
    """(N, 3, height, width) uint8: every record decoded and resized once (``cache_images``), 1 byte per pixel and
    channel (Market-1501's 12,936 training images at 256x128: 1.27 GB). Drawing a batch from it is one gather and
    one batched normalise / crop / flip (``augment_batch``), on the device the tensor lives on: the per-image path
    (decode, resize, normalise, pad, flip, collate: ~2 ms an image on one core) cannot feed a GPU from a few
    cores (docs/gpu.md, tests/benchmarks/test_loader_speed.py). Sets up to ``DECODED_CACHE_BYTES`` are kept for
    the process's next call: the returned tensor is shared, never modify it."""
    paths = tuple(str(r.path) for r in records)
    if not fits_decoded_cache(len(paths), height, width):
        return _decode(paths, height, width)
    try:  # a file rewritten in place is decoded again
        stamps = tuple((p.st_mtime_ns, p.st_size) for p in map(os.stat, paths))
    except OSError:  # decoding names the file that cannot be read
        return _decode(paths, height, width)
    return _decoded(paths, stamps, height, width)


@functools.lru_cache(maxsize=4)
def _decoded(paths: tuple[str, ...], stamps: tuple[tuple[int, int], ...], height: int, width: int) -> torch.Tensor:
    return _decode(paths, height, width)


def _decode(paths: Sequence[str], height: int, width: int) -> torch.Tensor:
    images = torch.empty((len(paths), 3, height, width), dtype=torch.uint8)
    for i, path in enumerate(tqdm(paths, desc="decoding images", leave=False, disable=None)):
        pixels = resized_pixels(load_image(path), height, width)  # a read-only view of PIL's buffer: copied
        images[i] = torch.tensor(pixels).permute(2, 0, 1)
    return images


def normalize_batch(pixels: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) uint8 -> ImageNet-normalised float32 on ``pixels``' device: the arithmetic of
    ``normalize_pixels``, so the same values."""
    device = pixels.device
    return pixels.float().div_(255.0).sub_(_MEAN.to(device)).div_(_STD.to(device))


def augment_draws(seeds: Sequence[int], *, pad: int, flip: bool) -> tuple[list[int], list[int], list[bool]]:
    """(tops, lefts, flipped) per augmentation seed: the numbers ``TrainTransform`` draws from the same seeds."""
    tops, lefts, flips = [], [], []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        top, left = (int(v) for v in rng.integers(0, 2 * pad + 1, size=2)) if pad else (0, 0)
        tops.append(top)
        lefts.append(left)
        flips.append(bool(flip and rng.random() < 0.5))
    return tops, lefts, flips


def augment_batch(pixels: torch.Tensor, tops: torch.Tensor, lefts: torch.Tensor, flipped: torch.Tensor,
                  pad: int) -> torch.Tensor:
    """``TrainTransform`` of a batch at once: (B, 3, H, W) uint8 -> ImageNet-normalised float32, zero-padded by
    ``pad`` after normalising, cropped at (top, left) and flipped where ``flipped``, on ``pixels``' device. The
    same arithmetic as ``normalize_pixels`` and the same copies as the crop and flip, so the same values."""
    _, _, H, W = pixels.shape
    x = normalize_batch(pixels)
    if pad:
        padded = torch.nn.functional.pad(x, (pad,) * 4)
        x = torch.stack([padded[i, :, top:top + H, left:left + W]
                         for i, (top, left) in enumerate(zip(tops.tolist(), lefts.tolist()))])
    if flipped.any():
        chosen = flipped.to(x.device)
        x[chosen] = x[chosen].flip(-1)
    return x


class _CachedBatches:
    """The P x K batches of one epoch drawn from ``preload_pixels``: the sampler's batches, ``augment_batch`` on
    the device of ``pixels``; no worker processes (a gather costs less than handing a batch between processes)."""

    def __init__(self, records: Sequence[Record], sampler: PKBatchSampler, pixels: torch.Tensor, *, pad: int,
                 flip: bool) -> None:
        self.sampler, self.pixels, self.pad, self.flip = sampler, pixels, pad, flip
        self.pids = torch.tensor([r.pid for r in records], dtype=torch.long)
        self.camids = torch.tensor([r.camid for r in records], dtype=torch.long)

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        for samples in self.sampler:
            indices = torch.tensor([index for index, _ in samples], dtype=torch.long)
            tops, lefts, flips = (torch.tensor(v) for v in augment_draws([seed for _, seed in samples],
                                                                        pad=self.pad, flip=self.flip))
            images = augment_batch(self.pixels[indices.to(self.pixels.device)], tops, lefts, flips, self.pad)
            yield {"images": images, "pids": self.pids[indices], "camids": self.camids[indices],
                   "indices": indices, "flipped": flips}


class _TrainImages(Dataset):
    """Indexed by (record index, augmentation seed) as the P x K sampler yields them."""

    def __init__(self, records: Sequence[Record], transform: TrainTransform) -> None:
        self.records, self.transform = records, transform

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, sample: Sample) -> dict[str, Any]:
        index, augment_seed = sample
        r = self.records[index]
        image = to_normalized_tensor(load_image(r.path), self.transform.height, self.transform.width)
        image, flipped = self.transform(image, np.random.default_rng(augment_seed))
        return {"images": image, "pids": r.pid, "camids": r.camid, "indices": index, "flipped": flipped}


class _TestImages(Dataset):
    def __init__(self, records: Sequence[Record], height: int, width: int) -> None:
        self.records, self.height, self.width = records, height, width

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict[str, Any]:
        r = self.records[index]
        image = to_normalized_tensor(load_image(r.path), self.height, self.width)
        return {"images": image, "pids": r.pid, "camids": r.camid, "indices": index}


def _cached_test_batches(records: Sequence[Record], pixels: torch.Tensor,
                         batch_size: int) -> Iterator[dict[str, torch.Tensor]]:
    pids = torch.tensor([r.pid for r in records], dtype=torch.long)
    camids = torch.tensor([r.camid for r in records], dtype=torch.long)
    for i in range(0, len(records), batch_size):
        end = min(i + batch_size, len(records))
        yield {"images": normalize_batch(pixels[i:end]), "pids": pids[i:end], "camids": camids[i:end],
               "indices": torch.arange(i, end)}


def _seed_worker(worker_id: int, base: int) -> None:
    """Workers draw nothing from global RNGs, but anything that does is seeded, not inherited."""
    seed_everything(derive_seed(base, worker_id))


def build_train_loader(records: Sequence[Record], *, p: int, k: int, height: int, width: int, seed: int, epoch: int,
                       num_workers: int = 0, pad: int = 0, flip: bool = True,
                       pixels: torch.Tensor | None = None) -> Iterable[dict[str, torch.Tensor]]:
    """The P x K batches of one epoch (a sized iterable); identical for any ``num_workers`` and on resume at ``epoch``.

    ``pixels`` (from ``preload_pixels``, on any device) replaces decoding the files each epoch: the same values,
    augmented a batch at a time where ``pixels`` lives (``num_workers`` is then unused).
    """
    sampler = PKBatchSampler([r.pid for r in records], p=p, k=k, seed=seed, epoch=epoch)
    if pixels is not None:
        return _CachedBatches(records, sampler, pixels, pad=pad, flip=flip)
    base = derive_seed(seed, epoch, 3)
    return DataLoader(
        _TrainImages(records, TrainTransform(height, width, flip=flip, pad=pad)),
        batch_sampler=sampler,
        num_workers=num_workers,
        worker_init_fn=functools.partial(_seed_worker, base=base),
        generator=torch.Generator().manual_seed(base),
    )


def build_test_loader(records: Sequence[Record], *, height: int, width: int, batch_size: int,
                      num_workers: int = 0) -> Iterable[dict[str, torch.Tensor]]:
    """All ``records`` in order, resized and normalised, ``batch_size`` at a time; a set small enough for the
    process's decoded-image cache (``preload_pixels``) is decoded once for every evaluation of the process."""
    if fits_decoded_cache(len(records), height, width):
        return _cached_test_batches(records, preload_pixels(records, height, width), batch_size)
    return DataLoader(
        _TestImages(records, height, width),
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        worker_init_fn=functools.partial(_seed_worker, base=0),
        generator=torch.Generator().manual_seed(0),
    )
