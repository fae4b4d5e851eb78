"""Loaders: the contract's batch dicts, independence of num_workers, resume, test order."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from aea.data.datasets import load_dataset
from aea.data.loaders import build_test_loader, build_train_loader, preload_pixels
from aea.data.transforms import load_image, resized_pixels, to_normalized_tensor


@pytest.fixture(scope="module")
def split(tiny_releases: Path):
    return load_dataset("market1501", tiny_releases)


def epoch_batches(split, epoch: int, num_workers: int = 0) -> list[dict[str, torch.Tensor]]:
    return list(build_train_loader(split.train, p=4, k=2, height=64, width=32, seed=5, epoch=epoch,
                                   num_workers=num_workers))


def assert_same(a: list[dict], b: list[dict]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)


def test_train_batches_follow_the_contract(split) -> None:
    batches = epoch_batches(split, 0)
    assert len(batches) == 16 // 4
    for batch in batches:
        assert set(batch) == {"images", "pids", "camids", "indices", "flipped"}
        assert batch["images"].shape == (8, 3, 64, 32) and batch["images"].dtype == torch.float32
        assert batch["flipped"].dtype == torch.bool
        for key in ("pids", "camids", "indices"):
            assert batch[key].dtype == torch.long and batch[key].shape == (8,)
        for i, index in enumerate(batch["indices"].tolist()):
            record = split.train[index]
            assert (batch["pids"][i], batch["camids"][i]) == (record.pid, record.camid)
            plain = to_normalized_tensor(load_image(record.path), 64, 32)  # flip is the only augmentation
            expected = torch.flip(plain, dims=(2,)) if batch["flipped"][i] else plain
            assert torch.equal(batch["images"][i], expected)
    assert len({pid for b in batches for pid in b["pids"].tolist()}) == 16  # every identity once


def test_batches_do_not_depend_on_num_workers(split) -> None:
    assert_same(epoch_batches(split, 1, num_workers=0), epoch_batches(split, 1, num_workers=2))


def test_cached_pixels_give_the_same_batches(split) -> None:
    """cache_images: decoding once (uint8) and normalising, padding, cropping and flipping a batch at a time
    (``augment_batch``) must not change a single value of any batch, with pad + crop and flip drawing the same
    numbers as the per-image ``TrainTransform``, and the cache is not modified by drawing from it."""
    pixels = preload_pixels(split.train, 64, 32)
    assert pixels.shape == (len(split.train), 3, 64, 32) and pixels.dtype == torch.uint8
    assert torch.equal(pixels[3], torch.tensor(resized_pixels(load_image(split.train[3].path), 64, 32))
                       .permute(2, 0, 1))
    kept = pixels.clone()
    for pad in (0, 4, 9):
        uncached, cached = (list(build_train_loader(split.train, p=4, k=2, height=64, width=32, seed=5, epoch=1,
                                                    pad=pad, pixels=cache)) for cache in (None, pixels))
        assert_same(uncached, cached)
        assert any(b["flipped"].any() and not b["flipped"].all() for b in cached)  # both ways drawn
    assert torch.equal(pixels, kept)


def test_a_resumed_run_sees_the_same_batches(split) -> None:
    straight = [epoch_batches(split, e) for e in range(3)]
    resumed = epoch_batches(split, 2)  # a fresh process starting at epoch 2
    assert_same(straight[2], resumed)
    assert not torch.equal(straight[1][0]["indices"], straight[2][0]["indices"])


def test_test_loader_keeps_listing_order_without_augmentation(split) -> None:
    batches = list(build_test_loader(split.gallery, height=64, width=32, batch_size=10))
    assert [len(b["indices"]) for b in batches] == [10, 10, 10, 6]
    assert all(set(b) == {"images", "pids", "camids", "indices"} for b in batches)
    assert torch.cat([b["indices"] for b in batches]).tolist() == list(range(36))
    assert torch.cat([b["pids"] for b in batches]).tolist() == [r.pid for r in split.gallery]
    assert torch.cat([b["camids"] for b in batches]).tolist() == [r.camid for r in split.gallery]
    first = to_normalized_tensor(load_image(split.gallery[0].path), 64, 32)
    assert torch.equal(batches[0]["images"][0], first)


def test_the_decoded_image_cache_gives_the_values_of_decoding_each_image(split, monkeypatch) -> None:
    """A set under DECODED_CACHE_BYTES is decoded once per process (a grouped job's evaluations share it); a larger
    one goes through the per-image DataLoader; both give the same batches, bit for bit."""
    from aea.data import loaders as L

    cached = list(build_test_loader(split.gallery, height=64, width=32, batch_size=10))
    loader = build_test_loader(split.gallery, height=64, width=32, batch_size=10)
    assert not isinstance(loader, torch.utils.data.DataLoader)
    assert preload_pixels(split.gallery, 64, 32) is preload_pixels(split.gallery, 64, 32)  # decoded once
    monkeypatch.setattr(L, "DECODED_CACHE_BYTES", 0)
    loader = build_test_loader(split.gallery, height=64, width=32, batch_size=10)
    assert isinstance(loader, torch.utils.data.DataLoader)
    assert preload_pixels(split.gallery, 64, 32) is not preload_pixels(split.gallery, 64, 32)
    for a, b in zip(cached, loader, strict=True):
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_an_image_rewritten_in_place_is_decoded_again(tmp_path) -> None:
    from PIL import Image

    from aea.data.datasets import Record

    path = tmp_path / "0001_c1s1_000001_00.jpg"
    Image.new("RGB", (32, 64), (10, 20, 30)).save(path)
    records = [Record(str(path), 1, 0)]
    before = preload_pixels(records, 64, 32)
    Image.new("RGB", (32, 64), (200, 20, 30)).save(path)
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    after = preload_pixels(records, 64, 32)
    assert before[0, 0, 0, 0] < 20 and after[0, 0, 0, 0] > 190
