"""Transforms: size, ImageNet normalisation by hand, the flip flag, pad + crop, unreadable files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from aea.data.transforms import TrainTransform, load_image, to_normalized_tensor
from aea.errors import AEAError


def gradient_image(height: int = 128, width: int = 64) -> Image.Image:
    y, x = np.mgrid[0:height, 0:width]
    return Image.fromarray(np.stack([x * 4, y * 2, (x + y) % 256], axis=2).astype(np.uint8))


def test_normalisation_by_hand() -> None:
    img = Image.fromarray(np.full((128, 64, 3), (255, 0, 128), dtype=np.uint8))
    x = to_normalized_tensor(img, 64, 32)
    assert x.shape == (3, 64, 32) and x.dtype == torch.float32
    expected = [(1 - 0.485) / 0.229, (0 - 0.456) / 0.224, (128 / 255 - 0.406) / 0.225]
    for c in range(3):
        torch.testing.assert_close(x[c], torch.full((64, 32), expected[c]), atol=1e-5, rtol=0)


def test_resize_is_bilinear_to_height_by_width() -> None:
    img = gradient_image()
    x = to_normalized_tensor(img, 256, 128)
    assert x.shape == (3, 256, 128)
    reference = np.asarray(img.resize((128, 256), Image.BILINEAR), dtype=np.float32) / 255
    back = (x * torch.tensor([0.229, 0.224, 0.225])[:, None, None] + torch.tensor([0.485, 0.456, 0.406])[:, None, None])
    np.testing.assert_allclose(back.permute(1, 2, 0).numpy(), reference, atol=1e-5)


def test_flip_flag_says_whether_the_image_was_mirrored() -> None:
    img = gradient_image()
    plain = to_normalized_tensor(img, 64, 32)
    transform = TrainTransform(64, 32)
    kept = plain.clone()
    flips = 0
    for seed in range(200):
        x, flipped = transform(plain, np.random.default_rng(seed))
        assert torch.equal(x, torch.flip(kept, dims=(2,)) if flipped else kept)
        flips += flipped
    assert 80 <= flips <= 120  # p = 0.5
    assert torch.equal(plain, kept)  # the input (a cached image) is never modified
    assert not any(TrainTransform(64, 32, flip=False)(plain, np.random.default_rng(s))[1] for s in range(50))


def test_pad_and_crop_shift_the_image_inside_a_mean_pixel_border() -> None:
    img = gradient_image()
    plain = to_normalized_tensor(img, 64, 32)
    transform = TrainTransform(64, 32, flip=False, pad=4)
    kept = plain.clone()
    shifts = set()
    for seed in range(40):
        x, flipped = transform(plain, np.random.default_rng(seed))
        assert x.shape == (3, 64, 32) and not flipped
        # the output is the plain image shifted by (dy, dx) in [-4, 4] with zeros (the mean pixel) shifted in
        matches = [(dy, dx) for dy in range(-4, 5) for dx in range(-4, 5)
                   if torch.equal(x, torch.nn.functional.pad(plain, (4, 4, 4, 4))[:, 4 + dy:68 + dy, 4 + dx:36 + dx])]
        assert len(matches) == 1
        shifts.add(matches[0])
    assert len(shifts) > 10
    same = [transform(plain, np.random.default_rng(3))[0] for _ in range(2)]
    assert torch.equal(*same)
    assert torch.equal(plain, kept)


def test_bad_sizes_are_refused() -> None:
    with pytest.raises(AEAError):
        TrainTransform(0, 32)
    with pytest.raises(AEAError):
        TrainTransform(64, 32, pad=-1)


def test_unreadable_image_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "0001_c1s1_000001_00.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 truncated")
    with pytest.raises(AEAError) as err:
        load_image(bad)
    assert str(bad) in str(err.value) and "\n" not in str(err.value)
    good = tmp_path / "gray.png"
    Image.fromarray(np.full((4, 2), 7, np.uint8)).save(good)  # greyscale files come back RGB
    assert np.asarray(load_image(good)).shape == (4, 2, 3)
