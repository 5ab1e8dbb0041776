"""The GPU fast path: bf16 autocast and channels_last on CUDA; exactly nothing on the CPU.

CPU runs stay float32 and bit-for-bit what they were (tests and the default demo rely on it).
On CUDA, forward passes run under bf16 autocast (no loss scaling needed, unlike fp16) and
convolutional models use the channels_last memory format, which tensor cores prefer.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn


def autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA; a no-op elsewhere."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def has_conv2d(model: nn.Module) -> bool:
    return any(isinstance(m, nn.Conv2d) for m in model.modules())


def prepare_model(model: nn.Module, device: torch.device) -> nn.Module:
    """channels_last for convnets on CUDA (in place: Parameter objects keep their identity, so
    optimizers and masks that hold them stay valid); unchanged on the CPU."""
    if device.type == "cuda" and has_conv2d(model):
        model.to(memory_format=torch.channels_last)
    return model


def prepare_inputs(inputs: torch.Tensor) -> torch.Tensor:
    """Image batches in channels_last on CUDA, to match the convnet's weights."""
    if inputs.is_cuda and inputs.dim() == 4 and inputs.is_floating_point():
        return inputs.contiguous(memory_format=torch.channels_last)
    return inputs
