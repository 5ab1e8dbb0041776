"""Layers that play special roles in a model: its first convolution and its classifier."""

from __future__ import annotations

from torch import nn


def first_conv_name(model: nn.Module) -> str | None:
    return next(
        (n for n, m in model.named_modules() if isinstance(m, nn.modules.conv._ConvNd)), None
    )


def last_linear_name(model: nn.Module) -> str | None:
    names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    return names[-1] if names else None
