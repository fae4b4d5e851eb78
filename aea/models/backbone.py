"""ResNet trunk (torchvision's layout and weights, aea.models.resnet), Conv5_X stride removed, taps on every stage.

Tap names (``aea.names.LAYERS``) follow the ResNet paper's stage names (He et al. 2016, Table 1):

  conv1  the stem: 7x7/2 convolution + BN + ReLU, *before* the 3x3/2 max-pool.
         The paper's table lists that max-pool as the first operation of conv2_x,
         so the conv1 output is the activation right after the stem ReLU
         (64 x H/2 x W/2; 64x128x64 at 256x128 input).
  conv2  layer1 output (conv2_x; 256x64x32 for ResNet-50 at 256x128)
  conv3  layer2 output (conv3_x)
  conv4  layer3 output (conv4_x)
  conv5  layer4 output (conv5_x; 2048x16x8 for ResNet-50 at 256x128 with last stride 1)

ImageNet weights come only from a local file (never downloaded): a path to a
torchvision state dict, or ``"torchvision-cache"`` meaning the file torchvision
itself would have downloaded into ``$TORCH_HOME/hub/checkpoints/``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path

import torch
from torch import nn

from aea.errors import AEAError
from aea.io import UnsafeFileError, atomic_path, load_tensors
from aea.models.resnet import ARCHS, TORCHVISION_WIDTH, ResNet
from aea.names import LAYERS

log = logging.getLogger(__name__)

TORCHVISION_CACHE = "torchvision-cache"
DOWNLOAD_ROOT = "https://download.pytorch.org/models"

# The ImageNet files torchvision names for each architecture, preferred first
# (resnet50: IMAGENET1K_V1, the weights the 2020 paper could have used, then V2).
WEIGHT_FILES: dict[str, tuple[str, ...]] = {
    "resnet18": ("resnet18-f37072fd.pth",),
    "resnet34": ("resnet34-b627a593.pth",),
    "resnet50": ("resnet50-0676ba61.pth", "resnet50-11ad3fa6.pth"),
}
_STAGES = (("conv2", "layer1"), ("conv3", "layer2"), ("conv4", "layer3"), ("conv5", "layer4"))


def checkpoint_dir() -> Path:
    """Where torchvision keeps downloaded weights: ``$TORCH_HOME/hub/checkpoints`` (default ~/.cache/torch)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def resolve_pretrained(arch: str, pretrained: str | os.PathLike) -> Path:
    """The local file behind ``pretrained``; AEAError naming the file to fetch and where, if it is absent."""
    if str(pretrained) != TORCHVISION_CACHE:
        path = Path(pretrained).expanduser()
        if not path.is_file():
            raise AEAError(
                f"pretrained weights file {path} does not exist; "
                f"give a torchvision {arch} state dict or pretrained=null"
            )
        return path
    if arch not in WEIGHT_FILES:
        raise AEAError(f"torchvision publishes no ImageNet weights for {arch}; set pretrained=null or another arch")
    folder = checkpoint_dir()
    for name in WEIGHT_FILES[arch]:
        if (folder / name).is_file():
            return folder / name
    name = WEIGHT_FILES[arch][0]
    raise AEAError(
        f"ImageNet weights for {arch} not found offline: download {DOWNLOAD_ROOT}/{name} "
        f"into {folder}/ (or set TORCH_HOME), or set pretrained=null to train from scratch"
    )


def _load_imagenet(net: ResNet, arch: str, path: Path) -> None:
    """Load a torchvision ImageNet state dict into ``net``, ignoring the fc head; any other mismatch is an error."""
    try:
        state = load_tensors(path)
    except UnsafeFileError:
        raise AEAError(f"{path} is not a weights file: it holds Python objects besides tensors, which aea never loads "
                       f"(unpickling them could run code); give a torchvision {arch} weights file") from None
    except Exception as exc:  # corrupt, truncated or not a torch file
        raise AEAError(f"cannot read pretrained weights {path} ({type(exc).__name__}); re-download the file") from exc
    if not isinstance(state, dict):
        raise AEAError(f"{path} is not a state dict; give a torchvision {arch} weights file")
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    own = {k: v for k, v in net.state_dict().items() if not k.startswith("fc.")}
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong_shape = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or wrong_shape:
        raise AEAError(
            f"{path} does not fit {arch}: missing {missing[:3]} ({len(missing)}), unexpected {unexpected[:3]} "
            f"({len(unexpected)}), wrong shape {wrong_shape[:3]} ({len(wrong_shape)}); give the torchvision {arch} file"
        )
    net.load_state_dict(state, strict=False)
    log.info("loaded %d pretrained tensors for %s from %s (fc ignored, none missing)", len(state), arch, path)


def write_stand_in_weights(path: str | os.PathLike, arch: str = "resnet50", seed: int = 0) -> Path:
    """Write a stand-in for torchvision's ``arch`` weights file: the same keys and shapes (1000-way fc
    included), RANDOM values from ``seed``. Not ImageNet weights: it exercises the loading path
    (``resolve_pretrained`` / ``_load_imagenet``) and the paper profile's sizes where the real file is absent."""
    if arch not in WEIGHT_FILES:
        raise AEAError(f"torchvision publishes no weights file for {arch}; choose one of {', '.join(WEIGHT_FILES)}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = ResNet(arch)
        state = dict(net.state_dict())
        state["fc.weight"] = torch.randn(1000, net.channels["conv5"]) * 0.01
        state["fc.bias"] = torch.zeros(1000)
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return path


class Backbone(nn.Module):
    """ResNet-18/34/50 trunk (no pooling, no fc) returning the activations of the requested stages.

    ``last_stride=1`` removes the down-sampling of Conv5_X (stride of layer4's first
    block and of its shortcut), doubling the conv5 map to H/16 x W/16.
    """

    def __init__(self, arch: str, *, pretrained: str | os.PathLike | None, last_stride: int = 1,
                 base_width: int = TORCHVISION_WIDTH) -> None:
        super().__init__()
        if arch not in ARCHS:
            raise AEAError(f"unknown backbone {arch!r}; choose one of {', '.join(ARCHS)}")
        if last_stride not in (1, 2):
            raise AEAError(f"last_stride={last_stride} must be 1 or 2")
        if base_width < 1:
            raise AEAError(f"base_width={base_width} must be >= 1 (64 is torchvision's ResNet)")
        if pretrained is not None and base_width != TORCHVISION_WIDTH:
            raise AEAError(f"base_width={base_width}: ImageNet weights exist only for base_width=64; "
                           "set base_width=64 or pretrained=null")
        net = ResNet(arch, base_width=base_width, last_stride=last_stride)
        if pretrained is not None:
            _load_imagenet(net, arch, resolve_pretrained(arch, pretrained))
        self.arch = arch
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu)
        self.maxpool = net.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4
        self.out_channels: dict[str, int] = dict(net.channels)

    def forward(self, x: torch.Tensor, taps: Iterable[str] = LAYERS, stop_after: str | None = None
                ) -> dict[str, torch.Tensor]:
        """Activations of ``taps`` (any of conv1..conv5). The trunk runs to conv5, which is always returned, unless
        ``stop_after`` names a layer: then it stops there and returns only the taps up to it (an attention map of
        conv2 costs the stem and one stage, not the whole trunk).

        Only requested maps are kept in the returned dict, so unrequested
        activations are freed as soon as autograd no longer needs them.
        """
        wanted = set(taps)
        unknown = wanted - set(LAYERS) | ({stop_after} - {None, *LAYERS})
        if unknown:
            raise AEAError(f"unknown tap(s) {sorted(unknown)}; choose from {', '.join(LAYERS)}")
        out: dict[str, torch.Tensor] = {}
        x = self.stem(x)
        if "conv1" in wanted:
            out["conv1"] = x
        if stop_after == "conv1":
            return out
        x = self.maxpool(x)
        for tap, layer in _STAGES:
            x = getattr(self, layer)(x)
            if tap in wanted:
                out[tap] = x
            if tap == stop_after:
                return out
        out["conv5"] = x
        return out
