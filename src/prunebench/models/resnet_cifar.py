"""ResNet-18 for 32x32 images (kuangliu/pytorch-cifar layout, paper appendix F.4.1).

A 3x3 stride-1 stem without max-pool keeps the 32x32 resolution in `layer1`; `layer2..4`
halve it. Module names (`conv1`, `layer1`..`layer4`, `linear`) are the ones the paper's table 2
presets refer to. Global average pooling replaces kuangliu's `avg_pool2d(out, 4)` (identical on
32x32 inputs) so that smaller test images (8x8 digits) also work.
"""

from __future__ import annotations

from torch import nn
from torch.nn import functional as F

from prunebench.data.info import DataInfo
from prunebench.models.spec import ModelSpec


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes)
            )

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNetCifar(nn.Module):
    def __init__(
        self,
        num_blocks: tuple[int, ...] = (2, 2, 2, 2),
        num_classes: int = 10,
        in_channels: int = 3,
        width: int = 64,
    ) -> None:
        super().__init__()
        self.in_planes = width
        self.conv1 = nn.Conv2d(in_channels, width, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.layer1 = self._make_layer(width, num_blocks[0], stride=1)
        self.layer2 = self._make_layer(2 * width, num_blocks[1], stride=2)
        self.layer3 = self._make_layer(4 * width, num_blocks[2], stride=2)
        self.layer4 = self._make_layer(8 * width, num_blocks[3], stride=2)
        self.linear = nn.Linear(8 * width, num_classes)

    def _make_layer(self, planes: int, blocks: int, stride: int) -> nn.Sequential:
        layers = []
        for s in [stride] + [1] * (blocks - 1):
            layers.append(BasicBlock(self.in_planes, planes, s))
            self.in_planes = planes
        return nn.Sequential(*layers)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.linear(out)


def build_resnet18_cifar(info: DataInfo, width: int = 64) -> nn.Module:
    """`width` is the stem/layer1 width (64 in the paper); smaller values make fast tests."""
    return ResNetCifar((2, 2, 2, 2), info.num_classes or 10, info.in_channels or 3, width)


SPEC = ModelSpec(
    build=build_resnet18_cifar,
    classifier="linear",
    description="ResNet-18 for 32x32 inputs (kuangliu/pytorch-cifar; 11.2M params at width 64)",
)
