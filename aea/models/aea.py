"""The two networks of AEA: the basic one sees original images, the complementary one erased images.

Test-time feature choices (``TwoNetworks.features``):
  basic / complementary  that network's 2,560-d feature, L2-normalised;
  concat                 both 2,560-d features concatenated into a unit 5,120-d
                         vector; "concatenated, L2-normalised" has two readings
                         (the config's ``test_feature_norm``):
    per_half  each half L2-normalised, concatenated, scaled by 1/sqrt(2): both
              networks weigh equally whatever their feature scales (training
              L2-normalises each network's feature inside the triplet loss, so the
              halves are compared on that scale); the 1/sqrt(2) changes no ranking;
    concat    raw halves concatenated, then L2-normalised: the network with the
              larger feature norm dominates the distance.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from aea.config import RunConfig
from aea.errors import AEAError
from aea.methods import get_method
from aea.models.branch import ReIDNetwork

FEATURES = ("basic", "complementary", "concat")


def concat_features(basic: torch.Tensor, complementary: torch.Tensor, norm: str = "per_half") -> torch.Tensor:
    """Unit 5,120-d test features from the two networks' raw features, by the ``norm`` reading."""
    if norm == "per_half":
        return torch.cat([F.normalize(basic, dim=1), F.normalize(complementary, dim=1)], dim=1) / math.sqrt(2.0)
    if norm == "concat":
        return F.normalize(torch.cat([basic, complementary], dim=1), dim=1)
    raise AEAError(f"test_feature_norm={norm!r}; choose per_half or concat")


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

    def features(self, x: torch.Tensor, which: str = "concat", norm: str = "per_half") -> torch.Tensor:
        """Unit-norm test features of images ``x``; the caller sets eval mode and no_grad."""
        _check_which(which)
        if which == "basic":
            return F.normalize(self.basic(x, taps=()).feature, dim=1)
        if which == "complementary":
            return F.normalize(self.complementary(x, taps=()).feature, dim=1)
        return concat_features(*self.raw_features(x), norm)

    def raw_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Both networks' 2,560-d features before any normalisation (basic, complementary)."""
        return self.basic(x, taps=()).feature, self.complementary(x, taps=()).feature


def _check_which(which: str) -> None:
    if which not in FEATURES:
        raise AEAError(f"unknown test feature {which!r}; choose one of {', '.join(FEATURES)}")


def build_networks(cfg: RunConfig, num_classes: int, *, pretrained: str | None) -> TwoNetworks | ReIDNetwork:
    """The method's network(s), freshly initialised (ImageNet weights from ``pretrained`` when given)."""
    def one() -> ReIDNetwork:
        return ReIDNetwork(
            cfg.arch, num_classes, pretrained=pretrained, embed_dim=cfg.embed_dim,
            num_parts=cfg.num_parts, dropout=cfg.dropout, base_width=cfg.base_width,
        )

    if get_method(cfg.method, cfg.peer_form).two_networks:
        return TwoNetworks(one(), one())
    return one()


def basic_network(model: TwoNetworks | ReIDNetwork) -> ReIDNetwork:
    """The network that sees the original images (a one-network run's only one)."""
    return model.basic if isinstance(model, TwoNetworks) else model
