"""The two networks of AEA: the basic one sees original images, the complementary one erased images.

Test-time feature choices (``TwoNetworks.features``):
  basic / complementary  that network's 2,560-d feature, L2-normalised;
  concat                 each network's feature L2-normalised, concatenated, then
                         scaled by 1/sqrt(2) so the 5,120-d vector has unit norm.
Normalising each half first gives both networks equal weight whatever their
feature scales (training L2-normalises each network's feature inside the
triplet loss, so the halves are compared on that scale); the final 1/sqrt(2) is
the L2 normalisation of the concatenation ("5,120-d, L2-normalised" in the
paper) and does not change any ranking.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from aea.errors import AEAError
from aea.models.branch import ReIDNetwork

FEATURES = ("basic", "complementary", "concat")


class TwoNetworks(nn.Module):
    """Holds the basic and the complementary ``ReIDNetwork`` (same topology, separate weights)."""

    def __init__(self, basic: ReIDNetwork, complementary: ReIDNetwork) -> None:
        super().__init__()
        if basic.feature_dim != complementary.feature_dim:
            raise AEAError(
                f"basic ({basic.feature_dim}-d) and complementary ({complementary.feature_dim}-d) features differ; "
                "build both networks with the same embed_dim and num_parts"
            )
        self.basic = basic
        self.complementary = complementary

    def feature_dim(self, which: str) -> int:
        """Dimension of the test feature ``which`` (2,560 or 5,120 with the paper's settings)."""
        _check_which(which)
        return self.basic.feature_dim * (2 if which == "concat" else 1)

    def features(self, x: torch.Tensor, which: str = "concat") -> torch.Tensor:
        """Unit-norm test features of images ``x``; the caller sets eval mode and no_grad."""
        _check_which(which)
        if which != "complementary":
            basic = F.normalize(self.basic(x, taps=()).feature, dim=1)
            if which == "basic":
                return basic
        complementary = F.normalize(self.complementary(x, taps=()).feature, dim=1)
        if which == "complementary":
            return complementary
        return torch.cat([basic, complementary], dim=1) / math.sqrt(2.0)


def _check_which(which: str) -> None:
    if which not in FEATURES:
        raise AEAError(f"unknown test feature {which!r}; choose one of {', '.join(FEATURES)}")
