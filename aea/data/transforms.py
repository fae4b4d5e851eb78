"""Image loading and the (deterministic) train / test transforms.

Order: resize to (height, width) -> tensor in [0, 1] -> ImageNet normalisation
-> optional zero pad + random crop -> optional horizontal flip.  Padding is done
after normalisation, so the padded border is the mean pixel (the same value an
erased pixel gets with fill 0).  The randomness comes from a numpy Generator the
caller derives from (seed, epoch, position), never from a global RNG.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from PIL import Image

from aea.data.datasets import IMAGE_ERRORS, rgb_image, unreadable_image
from aea.errors import AEAError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_MEAN = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
_STD = torch.tensor(IMAGENET_STD).view(3, 1, 1)


def load_image(path: str | os.PathLike) -> Image.Image:
    """The image at ``path`` as 8-bit RGB (``aea.data.datasets.rgb_image``); an unreadable file is an AEAError
    naming it."""
    try:
        with Image.open(path) as im:
            return rgb_image(im, path)
    except IMAGE_ERRORS as e:
        raise unreadable_image(path, e) from None


def resized_pixels(img: Image.Image, height: int, width: int) -> np.ndarray:
    """(height, width, 3) uint8 pixels after a bilinear resize: what ``normalize_pixels`` starts from."""
    if img.size != (width, height):
        img = img.resize((width, height), Image.BILINEAR)
    return np.asarray(img, dtype=np.uint8)


def normalize_pixels(pixels: np.ndarray) -> torch.Tensor:
    """(3, H, W) float32 in ImageNet-normalised space from (H, W, 3) uint8 pixels: what ``TrainTransform``
    starts from (``aea.data.loaders.augment_batch`` does the same arithmetic on a batch of cached uint8 pixels,
    so a cached run computes exactly what an uncached one does)."""
    x = torch.from_numpy(pixels.astype(np.float32) / 255.0).permute(2, 0, 1)
    return (x - _MEAN) / _STD


def to_normalized_tensor(img: Image.Image, height: int, width: int) -> torch.Tensor:
    """(3, height, width) float32, bilinear resize, ImageNet-normalised."""
    return normalize_pixels(resized_pixels(img, height, width))


class TrainTransform:
    """Optional pad + random crop, optional flip (p = 0.5) of a resized, normalised image; returns (image, flipped)."""

    def __init__(self, height: int, width: int, *, flip: bool = True, pad: int = 0) -> None:
        if height < 1 or width < 1 or pad < 0:
            raise AEAError(f"bad transform size height={height} width={width} pad={pad}; need positive sizes, pad >= 0")
        self.height, self.width, self.flip, self.pad = height, width, flip, pad

    def __call__(self, image: torch.Tensor, rng: np.random.Generator) -> tuple[torch.Tensor, bool]:
        """``image``: ``normalize_pixels`` of the image at this transform's size; never modified (it may be
        the cached one), though without pad and flip it is returned as it is."""
        x = image
        if self.pad:
            top, left = (int(v) for v in rng.integers(0, 2 * self.pad + 1, size=2))
            padded = torch.nn.functional.pad(x, (self.pad,) * 4)
            x = padded[:, top:top + self.height, left:left + self.width].contiguous()
        flipped = bool(self.flip and rng.random() < 0.5)
        if flipped:
            x = torch.flip(x, dims=(2,))
        return x, flipped
