"""Backbone: stage shapes, the conv1 tap position, last stride, and offline ImageNet loading."""

from __future__ import annotations

import pytest
import torch
import torchvision

from aea.errors import AEAError
from aea.models.backbone import Backbone
from aea.names import LAYERS


@pytest.fixture(scope="module")
def resnet50_maps():
    torch.manual_seed(0)
    net = Backbone("resnet50", pretrained=None).eval()
    with torch.no_grad():
        return net, net(torch.randn(1, 3, 256, 128))


def test_resnet50_stage_shapes_at_256x128(resnet50_maps):
    net, maps = resnet50_maps
    shapes = {k: tuple(v.shape[1:]) for k, v in maps.items()}
    assert shapes == {
        "conv1": (64, 128, 64),
        "conv2": (256, 64, 32),  # the paper's attention layer
        "conv3": (512, 32, 16),
        "conv4": (1024, 16, 8),
        "conv5": (2048, 16, 8),  # last stride 1: same size as conv4
    }
    assert net.out_channels == {k: v[0] for k, v in shapes.items()}


def test_conv1_is_stem_relu_output_before_maxpool():
    torch.manual_seed(0)
    net = Backbone("resnet18", pretrained=None).eval()
    x = torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        maps = net(x)
        assert maps["conv1"].shape == (2, 64, 32, 16)  # H/2 x W/2: before the stride-2 max-pool
        assert maps["conv1"].min() >= 0  # after the ReLU
        torch.testing.assert_close(net.layer1(net.maxpool(maps["conv1"])), maps["conv2"])


@pytest.mark.parametrize("arch,channels", [("resnet18", 512), ("resnet34", 512)])
def test_basic_block_archs_and_last_stride(arch, channels):
    x = torch.randn(1, 3, 64, 32)
    with torch.no_grad():
        stride1 = Backbone(arch, pretrained=None, last_stride=1).eval()(x, taps=())
        stride2 = Backbone(arch, pretrained=None, last_stride=2).eval()(x, taps=())
    assert tuple(stride1["conv5"].shape) == (1, channels, 4, 2)
    assert tuple(stride2["conv5"].shape) == (1, channels, 2, 1)


def test_only_requested_taps_are_returned_plus_conv5():
    net = Backbone("resnet18", pretrained=None).eval()
    with torch.no_grad():
        assert sorted(net(torch.randn(1, 3, 64, 32), taps=("conv2",))) == ["conv2", "conv5"]
        assert sorted(net(torch.randn(1, 3, 64, 32))) == sorted(LAYERS)
    with pytest.raises(AEAError, match="conv6"):
        net(torch.randn(1, 3, 64, 32), taps=("conv6",))


@pytest.mark.parametrize("layer", LAYERS)
def test_stop_after_gives_the_same_map_without_running_the_rest(layer):
    torch.manual_seed(0)
    net = Backbone("resnet18", pretrained=None).eval()
    x = torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        full = net(x, taps=(layer,))[layer]
        calls = []
        hook = net.layer4.register_forward_hook(lambda *_: calls.append(1))
        stopped = net(x, taps=(layer,), stop_after=layer)
        hook.remove()
    assert list(stopped) == [layer] and torch.equal(stopped[layer], full)
    assert calls == ([1] if layer == "conv5" else [])  # conv5 is layer4's output: the only case that runs it
    with pytest.raises(AEAError, match="conv9"):
        net(x, taps=(), stop_after="conv9")


def test_unknown_arch_is_refused():
    with pytest.raises(AEAError, match="resnet50"):
        Backbone("vgg16", pretrained=None)


def _save_imagenet_like(path, arch="resnet18", seed=1):
    torch.manual_seed(seed)
    state = getattr(torchvision.models, arch)(weights=None).state_dict()  # includes fc.*, like the real file
    torch.save(state, path)
    return state


def test_torchvision_cache_is_loaded_fc_ignored(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    folder = tmp_path / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    state = _save_imagenet_like(folder / "resnet18-f37072fd.pth")
    net = Backbone("resnet18", pretrained="torchvision-cache")
    torch.testing.assert_close(net.stem[0].weight, state["conv1.weight"])
    torch.testing.assert_close(net.layer4[1].bn2.running_var, state["layer4.1.bn2.running_var"])
    assert not hasattr(net, "fc")


def test_explicit_path_and_resnet50_v2_fallback(tmp_path, monkeypatch):
    state = _save_imagenet_like(tmp_path / "mine.pth")
    net = Backbone("resnet18", pretrained=str(tmp_path / "mine.pth"))
    torch.testing.assert_close(net.layer2[0].downsample[0].weight, state["layer2.0.downsample.0.weight"])

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    state50 = _save_imagenet_like(tmp_path / "hub" / "checkpoints" / "resnet50-11ad3fa6.pth", "resnet50")
    net50 = Backbone("resnet50", pretrained="torchvision-cache")
    torch.testing.assert_close(net50.layer4[0].conv2.weight, state50["layer4.0.conv2.weight"])
    assert net50.layer4[0].conv2.stride == (1, 1)  # last stride applied after loading


def test_missing_weights_name_the_download_and_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(AEAError) as err:
        Backbone("resnet50", pretrained="torchvision-cache")
    msg = str(err.value)
    assert "https://download.pytorch.org/models/resnet50-0676ba61.pth" in msg
    assert str(tmp_path / "hub" / "checkpoints") in msg
    assert "\n" not in msg
    with pytest.raises(AEAError, match="does not exist"):
        Backbone("resnet18", pretrained=str(tmp_path / "nope.pth"))


def test_wrong_or_corrupt_weights_are_refused(tmp_path):
    _save_imagenet_like(tmp_path / "r18.pth", "resnet18")
    with pytest.raises(AEAError, match="does not fit resnet34: missing"):
        Backbone("resnet34", pretrained=str(tmp_path / "r18.pth"))
    (tmp_path / "bad.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(AEAError, match="cannot read"):
        Backbone("resnet18", pretrained=str(tmp_path / "bad.pth"))


def test_resnet10_has_the_same_taps_and_last_stride_as_the_paper_trunk():
    """The smoke trunk: one BasicBlock per stage, conv5 keeps the conv4 resolution (last stride 1)."""
    net = Backbone("resnet10", pretrained=None)
    maps = net(torch.zeros(2, 3, 64, 32))
    assert {k: tuple(v.shape[1:]) for k, v in maps.items()} == {
        "conv1": (64, 32, 16), "conv2": (64, 16, 8), "conv3": (128, 8, 4), "conv4": (256, 4, 2), "conv5": (512, 4, 2)}
    assert [len(getattr(net, f"layer{i}")) for i in range(1, 5)] == [1, 1, 1, 1]
    with pytest.raises(AEAError, match="no ImageNet weights for resnet10"):
        Backbone("resnet10", pretrained="torchvision-cache")


@pytest.mark.parametrize("arch", ["resnet10", "resnet18", "resnet50"])
def test_own_resnet_equals_torchvision_at_the_same_seed(arch):
    """Same seed -> torchvision's initial weights bit for bit (fc aside), and the same function of the image."""
    from torchvision.models import resnet

    from aea.models.resnet import ResNet

    torch.manual_seed(3)
    ours = ResNet(arch, last_stride=2).eval()
    torch.manual_seed(3)
    if arch == "resnet10":
        theirs = resnet.ResNet(resnet.BasicBlock, [1, 1, 1, 1]).eval()
    else:
        theirs = getattr(resnet, arch)(weights=None).eval()
    their_state = {k: v for k, v in theirs.state_dict().items() if not k.startswith("fc.")}
    assert list(ours.state_dict()) == list(their_state)
    for key, value in ours.state_dict().items():
        assert torch.equal(value, their_state[key]), key
    x = torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        expected = theirs.layer4(theirs.layer3(theirs.layer2(theirs.layer1(
            theirs.maxpool(theirs.relu(theirs.bn1(theirs.conv1(x))))))))
        got = ours.layer4(ours.layer3(ours.layer2(ours.layer1(ours.maxpool(ours.relu(ours.bn1(ours.conv1(x))))))))
    torch.testing.assert_close(got, expected, rtol=0, atol=0)


def test_narrow_trunk_scales_every_stage_and_refuses_imagenet_weights():
    net = Backbone("resnet10", pretrained=None, base_width=16)
    assert net.out_channels == {"conv1": 16, "conv2": 16, "conv3": 32, "conv4": 64, "conv5": 128}
    with torch.no_grad():
        maps = net(torch.randn(1, 3, 64, 32))
    assert {k: tuple(v.shape[1:]) for k, v in maps.items()}["conv5"] == (128, 4, 2)
    with pytest.raises(AEAError, match="base_width=64"):
        Backbone("resnet18", pretrained="torchvision-cache", base_width=16)


def test_building_a_network_does_not_import_torchvision():
    """torchvision's import costs seconds per training process (torch._dynamo); the package avoids it."""
    import subprocess
    import sys

    code = "import sys; import aea.train, aea.evaluate; print('torchvision' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
