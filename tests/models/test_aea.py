"""TwoNetworks: test features per network and the unit-norm 5,120-d concatenation."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from aea.errors import AEAError
from aea.models import ReIDNetwork, TwoNetworks


@pytest.fixture(scope="module")
def pair():
    torch.manual_seed(0)
    return TwoNetworks(ReIDNetwork("resnet18", 5), ReIDNetwork("resnet18", 5)).eval()


def test_concat_is_normalised_halves_over_sqrt2(pair):
    x = torch.randn(3, 3, 64, 32)
    with torch.no_grad():
        concat = pair.features(x, "concat")
        basic = pair.features(x, "basic")
        comp = pair.features(x, "complementary")
        raw_basic = pair.basic(x, taps=()).feature
    assert concat.shape == (3, 5120) and basic.shape == comp.shape == (3, 2560)
    assert pair.feature_dim("concat") == 5120 and pair.feature_dim("basic") == 2560
    torch.testing.assert_close(basic, F.normalize(raw_basic, dim=1))
    torch.testing.assert_close(concat.norm(dim=1), torch.ones(3))
    torch.testing.assert_close(concat[:, :2560] * math.sqrt(2), basic)
    torch.testing.assert_close(concat[:, 2560:] * math.sqrt(2), comp)
    assert not torch.allclose(basic, comp)  # separate weights


def test_bad_feature_name_and_mismatched_networks(pair):
    with pytest.raises(AEAError, match="concat"):
        pair.features(torch.randn(1, 3, 64, 32), "both")
    with pytest.raises(AEAError, match="same embed_dim"):
        TwoNetworks(ReIDNetwork("resnet18", 5), ReIDNetwork("resnet18", 5, embed_dim=256))


def test_plain_concatenation_reading_weights_halves_by_their_norms():
    """test_feature_norm=concat: [b, c] / |[b, c]|; a half with 3x the norm dominates (hand-computed)."""
    from aea.models.aea import concat_features

    b = torch.tensor([[3.0, 0.0]])
    c = torch.tensor([[0.0, 1.0]])
    torch.testing.assert_close(concat_features(b, c, "concat"), torch.tensor([[3.0, 0.0, 0.0, 1.0]]) / math.sqrt(10))
    torch.testing.assert_close(concat_features(b, c, "per_half"), torch.tensor([[1.0, 0.0, 0.0, 1.0]]) / math.sqrt(2))
    with pytest.raises(AEAError, match="per_half or concat"):
        concat_features(b, c, "sum")
