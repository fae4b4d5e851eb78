"""Erasing strategies that turn a training batch into the complementary network's input.

One interface for all of them::

    erased, mask = strategy.erase(EraseInput(images, features=..., indices=..., flipped=..., generator=...))

``images`` are (B, 3, H, W) ImageNet-normalised (fill 0 = the mean pixel);
``mask`` is bool (B, H, W), True where a pixel was erased. Each strategy reads
only the fields of ``EraseInput`` it needs and refuses to run without them:

  salient  ``SalientErasing``     AEA and Baseline 2: top-R % of the attention
           (sum_c M_c^2) of the basic network's tapped layer, every iteration;
           needs ``features`` (that layer's activations, computed by the caller
           without grad). ``strategy.tap`` names the layer.
  gray     ``GrayErasing``        Baseline 3: top-R % grey level of the image.
  static   ``StaticMaskErasing``  Baseline 4 and AOS: one mask per training
           image, computed once (``static_salient_masks`` from a converged
           Baseline-1 network, ``adversarial_occlusion_masks`` for AOS), looked
           up by ``indices`` and mirrored where ``flipped``. The names
           "static-salient" and "occlusion" build the same class: what tells
           Baseline 4 from AOS is only which helper computed the masks.
  random   ``RandomErasing``      REDA (Zhong et al., AAAI 2020) with its
           published defaults; needs ``generator``.
  random-budget ``BudgetRectangleErasing``  control of the mechanism experiment
           (docs/mechanism.md): one random rectangle of exactly AEA's pixel
           budget (top-R % count) in every image; needs ``generator``.
  identity ``IdentityErasing``    control: nothing erased, the complementary
           network sees the originals.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from aea.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from aea.errors import AEAError
from aea.io import atomic_path
from aea.methods import STRATEGIES, Strategy
from kernels import EraseError, attention_erase, check_ratio
from kernels.reference import (
    Fill,
    apply_mask,
    attention_map,
    fill_tensor,
    num_erased,
    resize_map,
    top_ratio_mask,
)

log = logging.getLogger(__name__)

# ITU-R BT.601 luma weights for R, G, B.
LUMA_601 = (0.299, 0.587, 0.114)

Batch = Mapping[str, torch.Tensor]


@contextmanager
def _user_errors() -> Iterator[None]:
    """A kernel's refusal of its input (``kernels.EraseError``) reaches the user as AEAError, one line."""
    try:
        yield
    except EraseError as exc:
        raise AEAError(str(exc)) from exc


@dataclass(frozen=True)
class EraseInput:
    """What a strategy may read from one training batch.

    ``features``: the basic network's activations at the strategy's ``tap`` (salient erasing);
    ``indices``/``flipped``: training indices and horizontal flips of the samples (static masks);
    ``generator``: the only source of randomness (random erasing).
    """

    images: torch.Tensor
    features: torch.Tensor | None = None
    indices: torch.Tensor | None = None
    flipped: torch.Tensor | None = None
    generator: torch.Generator | None = None


class Erasing:
    """Base of the strategies. ``tap`` is the backbone layer whose activations ``erase`` needs, or None."""

    tap: str | None = None

    def erase(self, batch: EraseInput) -> tuple[torch.Tensor, torch.Tensor]:
        """(erased images, bool (B, H, W) mask) of one batch."""
        with _user_errors():
            return self._erase(batch)

    def _erase(self, batch: EraseInput) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError


def _check_ratio(ratio: float) -> float:
    with _user_errors():
        return check_ratio(ratio)


class SalientErasing(Erasing):
    """Erase the top ``ratio`` % of the attention of the basic network's ``layer`` (dynamic; AEA, Baseline 2)."""

    def __init__(self, ratio: float, fill: Fill = 0.0, backend: str = "auto", layer: str = "conv2") -> None:
        self.ratio = _check_ratio(ratio)
        self.fill = fill
        self.backend = backend
        self.tap = layer

    def _erase(self, batch: EraseInput) -> tuple[torch.Tensor, torch.Tensor]:
        if batch.features is None:
            raise ValueError(f"salient erasing needs the basic network's {self.tap} activations as features=")
        return attention_erase(batch.features, batch.images, self.ratio, self.fill, self.backend)


def gray_levels(images: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """ITU-R 601 luma (B, H, W) of normalised RGB ``images`` after undoing ``(x - mean) / std``."""
    m = torch.as_tensor(mean, dtype=images.dtype, device=images.device).view(1, -1, 1, 1)
    s = torch.as_tensor(std, dtype=images.dtype, device=images.device).view(1, -1, 1, 1)
    w = torch.as_tensor(LUMA_601, dtype=images.dtype, device=images.device).view(1, -1, 1, 1)
    if images.shape[1] != 3:
        raise AEAError(f"grey-level erasing needs RGB images, got {images.shape[1]} channels")
    return ((images * s + m) * w).sum(dim=1)


class GrayErasing(Erasing):
    """Erase the top ``ratio`` % brightest pixels (grey level) of each image (Baseline 3).

    The mask is a deterministic function of the image, so computing it per
    batch equals computing it once before training and carrying it along: the
    grey level is per pixel and the top-R % threshold (the k-th largest value)
    does not depend on pixel order, so mask(flip(x)) == flip(mask(x)) exactly.
    That holds for any pixel permutation; with crop/pad augmentation the
    per-batch mask is taken on the augmented image (the natural reading when
    the augmentation changes which pixels exist).
    """

    def __init__(
        self,
        ratio: float,
        fill: Fill = 0.0,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
    ) -> None:
        self.ratio = _check_ratio(ratio)
        self.fill = fill
        self.mean = tuple(mean)
        self.std = tuple(std)

    def _erase(self, batch: EraseInput) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            mask = top_ratio_mask(gray_levels(batch.images, self.mean, self.std), self.ratio)
            return apply_mask(batch.images, mask, self.fill), mask


@dataclass(frozen=True)
class MaskBank:
    """One bool H x W mask per training index, stored as packed bits (N, ceil(H*W/8)) uint8 (row-major)."""

    bits: np.ndarray
    height: int
    width: int

    def __post_init__(self) -> None:
        nbytes = math.ceil(self.height * self.width / 8)
        if self.bits.dtype != np.uint8 or self.bits.ndim != 2 or self.bits.shape[1] != nbytes:
            raise AEAError(
                f"mask bank bits of shape {self.bits.shape} ({self.bits.dtype}) do not hold {self.height}x{self.width} "
                "masks; recompute the masks"
            )

    @classmethod
    def from_masks(cls, masks: torch.Tensor | np.ndarray) -> MaskBank:
        """Pack a bool (N, H, W) array."""
        arr = masks.cpu().numpy() if isinstance(masks, torch.Tensor) else np.asarray(masks)
        n, h, w = arr.shape
        return cls(np.packbits(arr.reshape(n, h * w).astype(bool), axis=1), h, w)

    def __len__(self) -> int:
        return self.bits.shape[0]

    def lookup(self, indices: torch.Tensor, flipped: torch.Tensor | None = None) -> torch.Tensor:
        """Bool (B, H, W) masks of ``indices`` (on their device), mirrored left-right where ``flipped``."""
        idx = indices.detach().cpu().numpy().astype(np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise AEAError(
                f"training index {int(idx.max())} is outside the {len(self)} precomputed masks; "
                "recompute the masks for this dataset"
            )
        flat = np.unpackbits(self.bits[idx], axis=1, count=self.height * self.width)
        masks = torch.from_numpy(flat.reshape(-1, self.height, self.width).astype(bool)).to(indices.device)
        if flipped is not None:
            masks = torch.where(flipped.to(masks.device).view(-1, 1, 1), masks.flip(-1), masks)
        return masks

    def save(self, path: str | os.PathLike) -> None:
        """Write an .npz (bits, height, width) atomically."""
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez_compressed(fh, bits=self.bits, height=self.height, width=self.width)

    @classmethod
    def load(cls, path: str | os.PathLike) -> MaskBank:
        try:
            with np.load(Path(path)) as data:
                return cls(data["bits"], int(data["height"]), int(data["width"]))
        except (OSError, KeyError, ValueError) as exc:
            raise AEAError(f"cannot read mask file {path} ({type(exc).__name__}); recompute the masks") from exc


class StaticMaskErasing(Erasing):
    """Erase precomputed per-image masks (Baseline 4, AOS); masks follow the sample's horizontal flip.

    The masks are computed on the un-flipped image and mirrored for a flipped
    sample, which is exact for image-defined masks and, for network-defined
    ones, treats the network as flip-equivariant (official AOS code instead
    computes a second set on mirrored images).
    """

    def __init__(self, masks: MaskBank | str | os.PathLike, fill: Fill = 0.0) -> None:
        self.masks = masks if isinstance(masks, MaskBank) else MaskBank.load(masks)
        self.fill = fill

    @classmethod
    def load(cls, path: str | os.PathLike, fill: Fill = 0.0) -> StaticMaskErasing:
        """The strategy over the masks saved at ``path`` (see ``save``)."""
        return cls(MaskBank.load(path), fill)

    def save(self, path: str | os.PathLike) -> None:
        """Save the masks (not the fill, which stays a run setting) to an .npz atomically."""
        self.masks.save(path)

    def _erase(self, batch: EraseInput) -> tuple[torch.Tensor, torch.Tensor]:
        images = batch.images
        if batch.indices is None:
            raise ValueError("static mask erasing needs the training indices of the batch as indices=")
        if tuple(images.shape[-2:]) != (self.masks.height, self.masks.width):
            raise AEAError(
                f"images are {tuple(images.shape[-2:])} but the masks are {self.masks.height}x{self.masks.width}; "
                "recompute the masks at this input size"
            )
        mask = self.masks.lookup(batch.indices, batch.flipped).to(images.device)
        return apply_mask(images, mask, self.fill), mask


def _uniform(low: float, high: float, generator: torch.Generator) -> float:
    """One draw of U(low, high) from ``generator``."""
    return low + (high - low) * torch.rand((), generator=generator, device=generator.device).item()


class RandomErasing(Erasing):
    """REDA (Zhong et al., "Random Erasing Data Augmentation") with its published defaults.

    Per image, with probability ``p``: up to ``max_attempts`` times draw a
    target area S_e = U(area) * H * W and an aspect ratio r_e = U(aspect)
    (height / width), h = round(sqrt(S_e * r_e)), w = round(sqrt(S_e / r_e));
    the first draw with h < H and w < W places an h x w rectangle at a uniform
    position (top in [0, H - h], left in [0, W - w]) and fills each of its
    pixels with a random value, U(0, 1) per pixel and channel in [0, 1] RGB
    (the paper's random [0, 255]), normalised as (u - mean) / std. When no draw
    fits, the image is left as is. Only ``generator`` is used for randomness.
    """

    def __init__(
        self,
        p: float = 0.5,
        area: tuple[float, float] = (0.02, 0.4),
        aspect: tuple[float, float] = (0.3, 1 / 0.3),
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        max_attempts: int = 100,
    ) -> None:
        if not 0.0 <= p <= 1.0:
            raise AEAError(f"random erasing probability p={p} must be in [0, 1]")
        if not 0.0 < area[0] <= area[1] < 1.0:
            raise AEAError(f"random erasing area={area} must satisfy 0 < low <= high < 1")
        if not 0.0 < aspect[0] <= aspect[1]:
            raise AEAError(f"random erasing aspect={aspect} must satisfy 0 < low <= high")
        self.p = float(p)
        self.area = (float(area[0]), float(area[1]))
        self.aspect = (float(aspect[0]), float(aspect[1]))
        self.mean = tuple(mean)
        self.std = tuple(std)
        self.max_attempts = int(max_attempts)

    def _box(self, height: int, width: int, generator: torch.Generator) -> tuple[int, int, int, int] | None:
        """(top, left, h, w) of one image's rectangle, or None (not erased)."""
        if _uniform(0.0, 1.0, generator) >= self.p:
            return None
        for _ in range(self.max_attempts):
            target = _uniform(*self.area, generator) * height * width
            ratio = _uniform(*self.aspect, generator)
            h = int(round(math.sqrt(target * ratio)))
            w = int(round(math.sqrt(target / ratio)))
            if 0 < h < height and 0 < w < width:
                top = int(torch.randint(0, height - h + 1, (), generator=generator, device=generator.device))
                left = int(torch.randint(0, width - w + 1, (), generator=generator, device=generator.device))
                return top, left, h, w
        return None

    def _erase(self, batch: EraseInput) -> tuple[torch.Tensor, torch.Tensor]:
        images, generator = batch.images, batch.generator
        if generator is None:
            raise ValueError("random erasing needs a torch.Generator as generator= (no global RNG)")
        size, channels, height, width = images.shape
        mean = fill_tensor(self.mean, channels, images).view(-1, 1, 1)
        std = fill_tensor(self.std, channels, images).view(-1, 1, 1)
        erased = images.detach().clone()
        mask = torch.zeros(size, height, width, dtype=torch.bool, device=images.device)
        for b in range(size):
            box = self._box(height, width, generator)
            if box is None:
                continue
            top, left, h, w = box
            noise = torch.rand((channels, h, w), generator=generator, device=generator.device)
            erased[b, :, top : top + h, left : left + w] = (noise.to(images) - mean) / std
            mask[b, top : top + h, left : left + w] = True
        return erased, mask


def budget_rectangle(height: int, width: int, count: int, aspect: float) -> tuple[int, int, int]:
    """(h, w, extra) of a block of exactly ``count`` pixels near the aspect ``aspect`` (height / width).

    A strict rectangle cannot hold every count (307 pixels, AEA's 15 % of 64 x 32, is prime), so the
    block is a full h x w rectangle plus ``extra`` (< h) pixels of one more column, from its top.
    h = round(sqrt(count * aspect)) clamped so the block fits: ceil(count / width) <= h <= min(height, count).
    """
    if not 0 < count <= height * width:
        raise AEAError(f"cannot erase {count} pixels of a {height}x{width} image")
    low, high = math.ceil(count / width), min(height, count)
    h = min(max(int(round(math.sqrt(count * aspect))), low), high)
    return h, count // h, count % h


class BudgetRectangleErasing(Erasing):
    """Control of the mechanism experiment: AEA's pixel budget erased at a random place (docs/mechanism.md).

    In every image exactly ``kernels.reference.num_erased(ratio, H * W)`` pixels (the count of AEA's
    top-R % mask without ties) are filled with ``fill``: one block from ``budget_rectangle`` with an
    aspect ratio (height / width) drawn uniformly in ``aspect``, at a uniform position where it fits.
    Only ``generator`` is used for randomness.
    """

    def __init__(self, ratio: float, fill: Fill = 0.0, aspect: tuple[float, float] = (0.3, 1 / 0.3)) -> None:
        if not 0.0 < aspect[0] <= aspect[1]:
            raise AEAError(f"budget erasing aspect={aspect} must satisfy 0 < low <= high")
        self.ratio = _check_ratio(ratio)
        self.fill = fill
        self.aspect = (float(aspect[0]), float(aspect[1]))

    def _erase(self, batch: EraseInput) -> tuple[torch.Tensor, torch.Tensor]:
        images, generator = batch.images, batch.generator
        if generator is None:
            raise ValueError("budget erasing needs a torch.Generator as generator= (no global RNG)")
        size, _, height, width = images.shape
        count = num_erased(self.ratio, height * width)
        mask = torch.zeros(size, height, width, dtype=torch.bool, device=images.device)
        for b in range(size):
            h, w, extra = budget_rectangle(height, width, count, _uniform(*self.aspect, generator))
            cols = w + (extra > 0)
            top = int(torch.randint(0, height - h + 1, (), generator=generator, device=generator.device))
            left = int(torch.randint(0, width - cols + 1, (), generator=generator, device=generator.device))
            mask[b, top : top + h, left : left + w] = True
            if extra:
                mask[b, top : top + extra, left + w] = True
        return apply_mask(images, mask, self.fill), mask


class IdentityErasing(Erasing):
    """Control of the mechanism experiment: nothing is erased, the complementary network sees the originals."""

    def _erase(self, batch: EraseInput) -> tuple[torch.Tensor, torch.Tensor]:
        images = batch.images
        return images, torch.zeros(images.shape[0], *images.shape[-2:], dtype=torch.bool, device=images.device)


# --------------------------------------------------------------------------- precomputed masks


def _collect_masks(per_batch: Iterable[tuple[torch.Tensor, torch.Tensor]], num_images: int | None) -> MaskBank:
    """Pack (indices, bool (B, H, W) masks) pairs as they come into a MaskBank; every index 0..N-1 must appear."""
    rows: dict[int, np.ndarray] = {}
    height = width = 0
    for indices, masks in per_batch:
        height, width = masks.shape[-2:]
        packed = np.packbits(masks.cpu().numpy().reshape(len(masks), height * width), axis=1)
        rows.update(zip(indices.cpu().tolist(), packed))
    total = num_images if num_images is not None else (max(rows) + 1 if rows else 0)
    missing = sorted(set(range(total)) - set(rows))
    if not rows or missing or max(rows) >= total:
        raise AEAError(
            f"masks cover {len(rows)} training indices, expected 0..{total - 1} (missing e.g. {missing[:3]}); "
            "iterate the whole training set once, without dropping any batch"
        )
    return MaskBank(np.stack([rows[i] for i in range(total)]), height, width)


def _unflipped_images(batch: Batch, image_size: tuple[int, int]) -> torch.Tensor:
    images = batch["images"]
    if tuple(images.shape[-2:]) != tuple(image_size):
        raise AEAError(
            f"batch images are {tuple(images.shape[-2:])}, expected {tuple(image_size)}; use the training input size"
        )
    if "flipped" in batch and bool(torch.as_tensor(batch["flipped"]).any()):
        raise AEAError("static masks are computed on un-flipped images; iterate the training set without augmentation")
    return images


def static_salient_masks(
    feature_fn: Callable[[torch.Tensor], torch.Tensor],
    batches: Iterable[Batch],
    ratio: float,
    image_size: tuple[int, int],
    *,
    num_images: int | None = None,
) -> MaskBank:
    """Baseline 4: the top-``ratio`` % attention mask of every training image, computed once.

    ``feature_fn(images)`` returns the tapped layer's activations of a converged
    Baseline-1 network (in eval mode); the mask has exactly the semantics of
    ``kernels.reference`` (sum of squares, bilinear resize, ties included).
    ``batches`` yields dicts with ``images`` (un-flipped) and ``indices``.
    """
    _check_ratio(ratio)

    def masks() -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
        for batch in tqdm(batches, desc="static salient masks", unit="batch", leave=False):
            images = _unflipped_images(batch, image_size)
            with torch.no_grad():
                scores = resize_map(attention_map(feature_fn(images)), tuple(image_size))
            yield batch["indices"], top_ratio_mask(scores, ratio)

    with _user_errors():
        return _collect_masks(masks(), num_images)


def aos_geometry(
    image_size: tuple[int, int], area: float = 0.1, stride: int = 10, reference_height: int = 256
) -> tuple[tuple[int, int], tuple[int, int]]:
    """Default AOS occluder: ((h, w), (stride_h, stride_w)) for an input of ``image_size``.

    The official AOS code (huanghoujing/AOS4ReID, ``--sw_area 0.1 --sw_stride 10``)
    slides a square window of 10 % of the image area, side int(sqrt(0.1 H W)),
    in steps of 10 pixels: 57 x 57 in steps of 10 at 256 x 128, i.e. 20 x 8 = 160
    positions. Smaller inputs keep the square of 10 % area and scale the stride
    with the height (rounded up, at least 1).
    """
    height, width = image_size
    side = max(1, int(math.sqrt(area * height * width)))
    step = max(1, math.ceil(stride * height / reference_height))
    return (side, side), (step, step)


def occlusion_windows(
    image_size: tuple[int, int], window: tuple[int, int], stride: tuple[int, int], device: torch.device | None = None
) -> torch.Tensor:
    """Bool (P, H, W) masks of every window position, row-major over top-left corners
    (top in 0, sh, ... <= H - h; left in 0, sw, ... <= W - w)."""
    height, width = image_size
    wh, ww = window
    if not (0 < wh <= height and 0 < ww <= width and stride[0] > 0 and stride[1] > 0):
        raise AEAError(f"occlusion window {window} with stride {stride} does not fit {height}x{width} images")
    tops = range(0, height - wh + 1, stride[0])
    lefts = range(0, width - ww + 1, stride[1])
    masks = torch.zeros(len(tops) * len(lefts), height, width, dtype=torch.bool, device=device)
    for i, (top, left) in enumerate(itertools.product(tops, lefts)):
        masks[i, top : top + wh, left : left + ww] = True
    return masks


def adversarial_occlusion_masks(
    prob_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    batches: Iterable[Batch],
    window: tuple[int, int] | None = None,
    stride: tuple[int, int] | None = None,
    *,
    fill: Fill = 0.0,
    max_batch: int = 256,
    num_images: int | None = None,
) -> MaskBank:
    """AOS (Huang et al., CVPR 2018): per image, the window whose occlusion most lowers the true-class probability.

    ``prob_fn(images, pids)`` returns (n,) the softmax probability of class
    ``pids[i]`` for ``images[i]`` under a converged Baseline-1 network (eval
    mode). Every window position of an image is filled with ``fill`` and all
    occluded copies go through ``prob_fn`` in chunks of ``max_batch``; the kept
    mask is the window with the lowest true-class probability (first one on
    ties), i.e. the largest drop from the un-occluded probability. ``window``/``stride`` default to
    ``aos_geometry`` (the official settings). Deviations from the official
    code: it smooths the probability-drop grid with a 3x3 box filter before
    the argmax (here: the raw drop, the plain reading of "the occlusion that
    most lowers the true-class probability"), and it occludes a sample with
    probability 0.5 (here ``StaticMaskErasing`` erases every sample, like every
    other strategy feeding the complementary network).
    """
    def masks() -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
        geometry: tuple[tuple[int, int], torch.Tensor] | None = None
        for batch in tqdm(batches, desc="adversarial occlusion masks", unit="batch", leave=False):
            if geometry is None:
                size = tuple(batch["images"].shape[-2:])
                default_window, default_stride = aos_geometry(size)
                shape, step = window or default_window, stride or default_stride
                geometry = size, occlusion_windows(size, shape, step, batch["images"].device)
                log.info("AOS: %d windows of %s, stride %s, on %s images", len(geometry[1]), shape, step, size)
            size, windows = geometry
            images = _unflipped_images(batch, size)
            values = fill_tensor(fill, images.shape[1], images).view(1, -1, 1, 1)
            chosen = []
            for image, pid in zip(images, batch["pids"]):
                with torch.no_grad():
                    probs = torch.cat(
                        [
                            prob_fn(torch.where(chunk[:, None], values, image[None]), pid.expand(len(chunk))).float()
                            for chunk in windows.split(max_batch)
                        ]
                    )
                chosen.append(windows[int(probs.argmin())])
            yield batch["indices"], torch.stack(chosen)

    with _user_errors():
        return _collect_masks(masks(), num_images)


# --------------------------------------------------------------------------- factory

def build_erasing(strategy: Strategy | str, **kwargs: Any) -> Erasing:
    """The strategy (an ``aea.methods.STRATEGIES`` entry, or its name) built from plain keyword arguments (see
    each class; ``Strategy.kwargs`` reads them from a run's config)."""
    if isinstance(strategy, str):
        if strategy not in STRATEGIES:
            raise AEAError(f"unknown erasing strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
        strategy = STRATEGIES[strategy]
    try:
        return globals()[strategy.erasing_class](**kwargs)
    except TypeError as exc:
        raise AEAError(f"erasing strategy {strategy.name!r} got bad arguments {sorted(kwargs)}: {exc}") from exc
