"""PyTorch reference of the AEA erasing step; the Triton kernel must match it.

Semantics (one definition for every backend):
  A = sum_c M_c^2 accumulated in float32, whatever the input dtype;
  A is resized bilinearly (align_corners=False) to the image size H x W;
  k = num_erased(R, H*W) = round(R / 100 * H * W) clamped to [1, H*W - 1]
      (Python's round: halves go to the even integer);
  t = the k-th largest value of the resized map of each image;
  mask = A >= t (ties at t are erased, so the mask may hold more than k pixels);
  erased = images with every masked pixel set to ``fill`` (one value per channel).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from kernels import EraseError, check_ratio

Fill = float | Sequence[float] | torch.Tensor


def num_erased(ratio: float, num_pixels: int) -> int:
    """Pixels to erase for ``ratio`` percent of ``num_pixels``; refuses R outside (0, 100)."""
    ratio = check_ratio(ratio)
    if num_pixels < 2:
        raise EraseError(f"cannot erase a share of images with fewer than 2 pixels ({num_pixels}); use larger inputs")
    return min(max(round(ratio / 100.0 * num_pixels), 1), num_pixels - 1)


def attention_map(features: torch.Tensor) -> torch.Tensor:
    """Sum over channels of squared activations: (B, C, h, w) -> (B, h, w) float32."""
    if features.dim() != 4:
        raise EraseError(f"attention needs (B, C, h, w) activations, got shape {tuple(features.shape)}")
    f = features.float()
    return (f * f).sum(dim=1)


def resize_map(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize (align_corners=False) of (B, h, w) maps to (B, H, W)."""
    return F.interpolate(maps[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]


def top_ratio_mask(scores: torch.Tensor, ratio: float) -> torch.Tensor:
    """Boolean (B, H, W) mask of the top ``ratio`` % of each (B, H, W) score map, ties at the threshold included."""
    flat = scores.flatten(1)
    k = num_erased(ratio, flat.shape[1])
    threshold = torch.topk(flat, k, dim=1, sorted=False).values.min(dim=1, keepdim=True).values
    return (flat >= threshold).view_as(scores)


def fill_tensor(fill: Fill, channels: int, like: torch.Tensor) -> torch.Tensor:
    """``fill`` as a (channels,) tensor of ``like``'s dtype and device."""
    t = torch.as_tensor(fill, dtype=like.dtype, device=like.device).flatten()
    if t.numel() == 1:
        t = t.expand(channels)
    if t.numel() != channels:
        raise EraseError(
            f"erase fill has {t.numel()} values for {channels}-channel images; give one value or one per channel"
        )
    return t


def apply_mask(images: torch.Tensor, mask: torch.Tensor, fill: Fill) -> torch.Tensor:
    """Images (B, C, H, W) with the pixels of ``mask`` (B, H, W) set to ``fill`` per channel."""
    values = fill_tensor(fill, images.shape[1], images).view(1, -1, 1, 1)
    return torch.where(mask[:, None], values, images)


def attention_erase_reference(
    features: torch.Tensor, images: torch.Tensor, ratio: float, fill: Fill = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Erase the top ``ratio`` % of the attention of ``features`` from ``images``.

    Returns ``(erased_images, mask)`` with mask of shape (B, H, W), dtype bool.
    """
    if images.dim() != 4 or features.shape[0] != images.shape[0]:
        raise EraseError(
            f"features {tuple(features.shape)} and images {tuple(images.shape)} "
            "must both be 4-d with the same batch size"
        )
    with torch.no_grad():
        scores = resize_map(attention_map(features), tuple(images.shape[-2:]))
        mask = top_ratio_mask(scores, ratio)
        return apply_mask(images, mask, fill), mask
