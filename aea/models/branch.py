"""One AEA "network": backbone + global branch + horizontal part branches + identity classifier.

Topology (paper, Sec. III): the conv5 map (2048x16x8 for ResNet-50 at 256x128)
feeds
  * a global branch: average pool over the whole map -> FC_1 (512-d) -> Leaky ReLU(0.1);
  * ``num_parts`` (4) part branches: the map is cut into horizontal stripes of
    equal height, each stripe average-pooled -> its own 512-d FC -> Leaky ReLU(0.1);
  * the five 512-d embeddings are concatenated (global first, then parts top to
    bottom) into the 2,560-d feature, which goes through Dropout(0.5) and FC_2,
    the classifier over the training identities.

The paper states "FC_1 512-d with Leaky ReLU 0.1 and Dropout 0.5" and no
BatchNorm, so there is none. Decision: the feature used for the triplet loss and
at test time is the concatenation *after* the Leaky ReLU and *before* dropout.
Dropout only regularises the classifier: a triplet distance between randomly
half-zeroed vectors would be noise, and taking the feature before dropout makes
the training feature the very function of the image that is used at test time
(in eval mode dropout is the identity anyway).

Initialisation of the new layers (unstated in the paper): embedding FCs Kaiming
normal for a Leaky ReLU of slope 0.1, classifier normal(0, 0.001); zero biases.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from aea.errors import AEAError
from aea.models.backbone import Backbone

LEAKY_SLOPE = 0.1


class NetOutput(NamedTuple):
    feature: torch.Tensor  # (B, (1 + num_parts) * embed_dim), after activation, before dropout
    logits: torch.Tensor  # (B, num_classes)
    maps: dict[str, torch.Tensor]  # the requested backbone taps only


def _embedding(in_dim: int, out_dim: int) -> nn.Sequential:
    fc = nn.Linear(in_dim, out_dim)
    nn.init.kaiming_normal_(fc.weight, a=LEAKY_SLOPE, nonlinearity="leaky_relu")
    nn.init.zeros_(fc.bias)
    return nn.Sequential(fc, nn.LeakyReLU(LEAKY_SLOPE))


class ReIDNetwork(nn.Module):
    """Backbone + global and part embeddings + identity classifier; see the module docstring."""

    def __init__(
        self,
        arch: str,
        num_classes: int,
        *,
        pretrained: str | os.PathLike | None = None,
        embed_dim: int = 512,
        num_parts: int = 4,
        dropout: float = 0.5,
        last_stride: int = 1,
        base_width: int = 64,
    ) -> None:
        super().__init__()
        if num_classes < 1 or embed_dim < 1 or num_parts < 1:
            raise AEAError(f"num_classes={num_classes}, embed_dim={embed_dim}, num_parts={num_parts} must all be >= 1")
        if not 0.0 <= dropout < 1.0:
            raise AEAError(f"dropout={dropout} must be in [0, 1)")
        self.backbone = Backbone(arch, pretrained=pretrained, last_stride=last_stride, base_width=base_width)
        channels = self.backbone.out_channels["conv5"]
        self.num_parts = num_parts
        self.feature_dim = (1 + num_parts) * embed_dim
        self.global_branch = _embedding(channels, embed_dim)
        self.part_branches = nn.ModuleList(_embedding(channels, embed_dim) for _ in range(num_parts))
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(self.feature_dim, num_classes)
        nn.init.normal_(self.classifier.weight, std=0.001)
        nn.init.zeros_(self.classifier.bias)

    def tap(self, x: torch.Tensor, layer: str) -> torch.Tensor:
        """The activations of ``layer`` alone: the trunk stops there (no heads, no later stages)."""
        return self.backbone(x, taps=(layer,), stop_after=layer)[layer]

    def forward(self, x: torch.Tensor, taps: Iterable[str] = ("conv2",)) -> NetOutput:
        """Feature, logits and the activations of ``taps`` (e.g. ``("conv2",)``; ``()`` for none)."""
        taps = tuple(taps)
        maps = self.backbone(x, taps)
        conv5 = maps["conv5"] if "conv5" in taps else maps.pop("conv5")
        if conv5.shape[2] < self.num_parts:
            raise AEAError(
                f"conv5 map is {conv5.shape[2]} rows high, fewer than num_parts={self.num_parts}; use a taller input"
            )
        pooled_global = conv5.mean(dim=(2, 3))
        # Equal horizontal stripes: exact stripe means when the height divides by num_parts
        # (16 / 4 at 256x128); adaptive pooling spreads the rows as evenly as possible otherwise.
        stripes = F.adaptive_avg_pool2d(conv5, (self.num_parts, 1)).flatten(2)  # (B, C, num_parts)
        embeddings = [self.global_branch(pooled_global)]
        embeddings += [branch(stripes[:, :, i]) for i, branch in enumerate(self.part_branches)]
        feature = torch.cat(embeddings, dim=1)
        logits = self.classifier(self.dropout(feature))
        return NetOutput(feature, logits, maps)
