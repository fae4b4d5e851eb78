"""ResNet trunks written here, with torchvision's parameter names and initialisation.

Why not import ``torchvision.models``: importing torchvision pulls in
``torch._dynamo`` and costs 2.5-3 s per process; a workflow of a hundred short
training jobs pays that a hundred times on each cluster node.  The modules below
have exactly torchvision's state-dict keys (``conv1``, ``bn1``, ``layer1.0.conv1``,
``layer1.0.downsample.0`` ...), so torchvision's ImageNet files load unchanged,
and the tests check that both compute the same function from the same weights.

``base_width`` scales every stage (torchvision: 64, i.e. 64/128/256/512 channels
before the Bottleneck expansion).  Narrower trunks exist only for CPU-sized
profiles trained from scratch: no ImageNet weights fit them.
"""

from __future__ import annotations

from torch import Tensor, nn

# arch -> (block type, blocks per stage)
ARCHS: dict[str, tuple[str, tuple[int, int, int, int]]] = {
    "resnet10": ("basic", (1, 1, 1, 1)),  # one block per stage: the CPU-sized trunk of small profiles
    "resnet18": ("basic", (2, 2, 2, 2)),
    "resnet34": ("basic", (3, 4, 6, 3)),
    "resnet50": ("bottleneck", (3, 4, 6, 3)),
}
TORCHVISION_WIDTH = 64


def _conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


def _conv1x1(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions; the stride sits on the first (as in torchvision)."""

    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int, downsample: nn.Module | None) -> None:
        super().__init__()
        self.conv1 = _conv3x3(cin, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 - 3x3 - 1x1 with 4x expansion; the stride sits on the 3x3 (torchvision's "ResNet v1.5")."""

    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int, downsample: nn.Module | None) -> None:
        super().__init__()
        self.conv1 = _conv1x1(cin, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = _conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = _conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """Stem (conv1, bn1, relu, maxpool) and four stages ``layer1..layer4``; no pooling head, no fc.

    ``last_stride`` is the stride of ``layer4`` (2 in torchvision; 1 removes the
    Conv5_X down-sampling as the paper does).
    """

    def __init__(self, arch: str, *, base_width: int = TORCHVISION_WIDTH, last_stride: int = 2) -> None:
        super().__init__()
        kind, blocks = ARCHS[arch]
        block = BasicBlock if kind == "basic" else Bottleneck
        self.block = block
        self.conv1 = nn.Conv2d(3, base_width, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(base_width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.channels = {"conv1": base_width}
        cin = base_width
        for i, (n, stride) in enumerate(zip(blocks, (1, 2, 2, last_stride))):
            planes = base_width * 2**i
            layer, cin = self._stage(block, cin, planes, n, stride)
            setattr(self, f"layer{i + 1}", layer)
            self.channels[f"conv{i + 2}"] = cin
        # torchvision builds its 1000-way fc here before re-initialising the convolutions; drawing the same
        # numbers (and discarding them) keeps the random stream, so a seed gives torchvision's initial weights.
        nn.Linear(cin, 1000)
        self._init_weights()

    @staticmethod
    def _stage(block: type[nn.Module], cin: int, planes: int, n: int, stride: int) -> tuple[nn.Sequential, int]:
        cout = planes * block.expansion
        downsample = None
        if stride != 1 or cin != cout:
            downsample = nn.Sequential(_conv1x1(cin, cout, stride), nn.BatchNorm2d(cout))
        layers = [block(cin, planes, stride, downsample)]
        layers += [block(cout, planes, 1, None) for _ in range(n - 1)]
        return nn.Sequential(*layers), cout

    def _init_weights(self) -> None:
        """torchvision's initialisation: Kaiming normal (fan out) convolutions, BN weight 1 and bias 0."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
