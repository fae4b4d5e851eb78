"""ReIDNetwork: feature/logit sizes, the global + 4 horizontal-stripe computation, feature before dropout."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from aea.errors import AEAError
from aea.models import ReIDNetwork


@pytest.fixture(scope="module")
def small_net():
    torch.manual_seed(0)
    return ReIDNetwork("resnet18", num_classes=7)


def test_resnet50_feature_is_2560_at_256x128():
    torch.manual_seed(0)
    net = ReIDNetwork("resnet50", num_classes=751).eval()
    with torch.no_grad():
        out = net(torch.randn(2, 3, 256, 128))
    assert out.feature.shape == (2, 2560) and net.feature_dim == 2560
    assert out.logits.shape == (2, 751)
    assert list(out.maps) == ["conv2"] and out.maps["conv2"].shape == (2, 256, 64, 32)


def test_feature_is_global_then_four_stripes_after_leaky_relu(small_net):
    net = small_net.eval()
    x = torch.randn(3, 3, 128, 64)  # conv5 is 8x4: stripes of 2 rows
    with torch.no_grad():
        out = net(x, taps=("conv5",))
        conv5 = out.maps["conv5"]
        expected = [F.leaky_relu(net.global_branch[0](conv5.mean(dim=(2, 3))), 0.1)]
        for i in range(4):
            stripe = conv5[:, :, 2 * i : 2 * i + 2, :].mean(dim=(2, 3))
            expected.append(F.leaky_relu(net.part_branches[i][0](stripe), 0.1))
        torch.testing.assert_close(out.feature, torch.cat(expected, dim=1))
        torch.testing.assert_close(out.logits, net.classifier(out.feature))  # eval: dropout is the identity
    assert (out.feature < 0).any()  # Leaky ReLU, not ReLU


def test_dropout_acts_on_classifier_input_only(small_net):
    net = small_net.train()
    x = torch.randn(4, 3, 64, 32)
    torch.manual_seed(1)
    first = net(x, taps=())
    second = net(x, taps=())
    torch.testing.assert_close(first.feature, second.feature)  # same batch statistics, no dropout
    assert not torch.allclose(first.logits, second.logits)  # dropout 0.5 before FC_2
    assert first.maps == {}


def test_gradients_reach_the_backbone(small_net):
    net = small_net.train()
    net.zero_grad()
    out = net(torch.randn(4, 3, 64, 32))
    (out.logits.sum() + out.feature.sum()).backward()
    assert net.backbone.stem[0].weight.grad.abs().sum() > 0


def test_bad_parameters_are_refused():
    with pytest.raises(AEAError, match="dropout"):
        ReIDNetwork("resnet18", 5, dropout=1.0)
    with pytest.raises(AEAError, match="num_classes"):
        ReIDNetwork("resnet18", 0)
    net = ReIDNetwork("resnet18", 5, num_parts=8).eval()
    with pytest.raises(AEAError, match="taller input"):
        net(torch.randn(1, 3, 64, 32))  # conv5 has 4 rows < 8 parts
