"""DataLoaders of the contract's batch dicts.

Train batches: ``images`` (B, 3, H, W) float ImageNet-normalised, ``pids``,
``camids``, ``indices`` (into the records) long, ``flipped`` bool; one loader
per epoch (``epoch`` is part of what seeds it).  Test batches: the same minus
``flipped``, no augmentation, in listing order.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from aea.data.datasets import Record
from aea.data.sampler import PKBatchSampler, Sample
from aea.data.transforms import TrainTransform, load_image, to_normalized_tensor
from aea.seeding import derive_seed, seed_everything


def preload_pixels(records: Sequence[Record], height: int, width: int) -> torch.Tensor:
    """(N, 3, height, width) float32: every record resized and normalised once (``cache_images``: small data
    sets, 4 bytes per pixel and channel; workers inherit them), not again each time an epoch draws it."""
    images = torch.empty((len(records), 3, height, width), dtype=torch.float32)
    for i, r in enumerate(tqdm(records, desc="caching images", leave=False, disable=None)):
        images[i] = to_normalized_tensor(load_image(r.path), height, width)
    return images


class _TrainImages(Dataset):
    """Indexed by (record index, augmentation seed) as the P x K sampler yields them."""

    def __init__(self, records: Sequence[Record], transform: TrainTransform,
                 pixels: torch.Tensor | None = None) -> None:
        self.records, self.transform, self.pixels = records, transform, pixels

    def _image(self, index: int) -> torch.Tensor:
        if self.pixels is not None:
            return self.pixels[index]
        return to_normalized_tensor(load_image(self.records[index].path), self.transform.height, self.transform.width)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, sample: Sample) -> dict[str, Any]:
        index, augment_seed = sample
        r = self.records[index]
        image, flipped = self.transform(self._image(index), np.random.default_rng(augment_seed))
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


def _seed_worker(worker_id: int, base: int) -> None:
    """Workers draw nothing from global RNGs, but anything that does is seeded, not inherited."""
    seed_everything(derive_seed(base, worker_id))


def build_train_loader(records: Sequence[Record], *, p: int, k: int, height: int, width: int, seed: int, epoch: int,
                       num_workers: int = 0, pad: int = 0, flip: bool = True,
                       pixels: torch.Tensor | None = None) -> DataLoader:
    """The P x K batches of one epoch; identical for any ``num_workers`` and on resume at ``epoch``.

    ``pixels`` (from ``preload_pixels``) replaces decoding and normalising the files each epoch with the same values.
    """
    sampler = PKBatchSampler([r.pid for r in records], p=p, k=k, seed=seed, epoch=epoch)
    base = derive_seed(seed, epoch, 3)
    return DataLoader(
        _TrainImages(records, TrainTransform(height, width, flip=flip, pad=pad), pixels),
        batch_sampler=sampler,
        num_workers=num_workers,
        worker_init_fn=functools.partial(_seed_worker, base=base),
        generator=torch.Generator().manual_seed(base),
    )


def build_test_loader(records: Sequence[Record], *, height: int, width: int, batch_size: int,
                      num_workers: int = 0) -> DataLoader:
    """All ``records`` in order, resized and normalised, ``batch_size`` at a time."""
    return DataLoader(
        _TestImages(records, height, width),
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        worker_init_fn=functools.partial(_seed_worker, base=0),
        generator=torch.Generator().manual_seed(0),
    )
