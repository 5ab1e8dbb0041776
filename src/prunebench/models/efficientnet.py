"""torchvision's EfficientNetV2-S (paper appendix F.4.4: ImageNet weights, CIFAR at 128x128).

Structured pruning rounds every pruned layer's channel count to a multiple of 8 (`round_to=8`):
EfficientNet's own widths are multiples of 8 (torchvision's `_make_divisible`), and kernels run
fastest on such widths; the 50 % structured test checks it.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from torch import nn

from prunebench.data.info import DataInfo
from prunebench.errors import ConfigError
from prunebench.models.spec import ModelSpec, StructuredHooks

ROUND_TO = 8


def build_efficientnet_v2_s(
    info: DataInfo,
    dropout: float = 0.2,
    stochastic_depth_prob: float = 0.2,
    stages: int | None = None,
) -> nn.Module:
    """`stages` keeps only the first k of the 6 block stages (a small variant for quick tests;
    stages 1-3 are fused MBConv, 4-6 MBConv with squeeze-excitation)."""
    from torchvision.models import efficientnet_v2_s

    num_classes = info.num_classes or 1000
    if stages is None:
        model = efficientnet_v2_s(
            weights=None,
            num_classes=num_classes,
            dropout=dropout,
            stochastic_depth_prob=stochastic_depth_prob,
        )
    else:
        from torchvision.models.efficientnet import EfficientNet, _efficientnet_conf

        setting, last_channel = _efficientnet_conf("efficientnet_v2_s")
        if not 1 <= stages <= len(setting):
            raise ConfigError(f"model.options.stages must be 1..{len(setting)}, got {stages}")
        model = EfficientNet(
            setting[:stages],
            dropout,
            stochastic_depth_prob,
            num_classes,
            norm_layer=partial(nn.BatchNorm2d, eps=1e-03),  # as torchvision's efficientnet_v2_s
            last_channel=last_channel,
        )
    if (info.in_channels or 3) != 3:
        stem = model.features[0][0]
        model.features[0][0] = nn.Conv2d(
            info.in_channels, stem.out_channels, 3, stride=2, padding=1, bias=False
        )
    return model


def efficientnet_pruner_kwargs(model: nn.Module) -> dict[str, Any]:
    return {"round_to": ROUND_TO}


SPEC = ModelSpec(
    build=build_efficientnet_v2_s,
    classifier="classifier.1",
    description="torchvision EfficientNetV2-S (21M params with 1000 classes)",
    structured=StructuredHooks(pruner_kwargs=efficientnet_pruner_kwargs),
)
