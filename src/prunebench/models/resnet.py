"""torchvision's ResNet-18 (the ImageNet architecture: 7x7 stride-2 stem and max-pool).

The paper prunes it on ImageNet from torchvision's pretrained weights (appendix F.4.3): give
them as a local `.pth` state dict in `model.weights`. The CIFAR variant is `resnet18_cifar`.
"""

from __future__ import annotations

from torch import nn

from prunebench.data.info import DataInfo
from prunebench.models.spec import ModelSpec


def build_resnet18(info: DataInfo) -> nn.Module:
    from torchvision.models import resnet18

    model = resnet18(weights=None, num_classes=info.num_classes or 1000)
    if (info.in_channels or 3) != 3:
        model.conv1 = nn.Conv2d(info.in_channels, 64, 7, stride=2, padding=3, bias=False)
    return model


SPEC = ModelSpec(
    build=build_resnet18,
    classifier="fc",
    description="torchvision ResNet-18 (ImageNet stem; 11.7M params with 1000 classes)",
)
