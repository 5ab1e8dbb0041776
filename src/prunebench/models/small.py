"""Small CNNs for the offline default (digits) and for tests: seconds per epoch on a CPU."""

from __future__ import annotations

from torch import nn

from prunebench.data.info import DataInfo
from prunebench.models.spec import ModelSpec


def conv_bn_relu(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]


class SmallCNN(nn.Module):
    """conv-bn-relu x3 with one 2x2 pool, global average pool, linear classifier (~95k params
    at width 32 for 1-channel 8x8 input)."""

    def __init__(self, in_channels: int, num_classes: int, width: int = 32) -> None:
        super().__init__()
        self.features = nn.Sequential(
            *conv_bn_relu(in_channels, width),
            *conv_bn_relu(width, 2 * width),
            nn.MaxPool2d(2),
            *conv_bn_relu(2 * width, 4 * width),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.classifier = nn.Linear(4 * width, num_classes)

    def forward(self, x):
        return self.classifier(self.features(x))


def build_small_cnn(info: DataInfo, width: int = 32) -> nn.Module:
    return SmallCNN(info.in_channels or 1, info.num_classes or 10, width=width)


SPEC = ModelSpec(
    build=build_small_cnn,
    classifier="classifier",
    description="3-conv CNN with BatchNorm (~95k params), for digits and tests",
)
