"""The GPU fast path: bf16 autocast, channels_last, cuDNN autotuning, fused optimizers and
torch.compile on CUDA; exactly nothing on the CPU.

CPU runs stay float32 and bit-for-bit what they were (tests and the default demo rely on it).
On CUDA, forward passes run under bf16 autocast (no loss scaling needed, unlike fp16) and
convolutional models use the channels_last memory format, which tensor cores prefer. Every
function decides from the device it is given, never from what the machine has, so tests run
the CUDA branches' logic on the CPU.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

CompileSetting = Literal["auto"] | bool
# `train.compile: auto` compiles a training phase whose fewest planned epochs reach this. Compiling
# costs tens of seconds per distinct shape (every structured step has new shapes) and saves a
# fraction of each epoch, so only long phases repay it: the hybrid's first step, pretraining.
# A guess, NOT measured on a GPU (none was available when this was written).
AUTO_COMPILE_MIN_EPOCHS = 8


def autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA; a no-op elsewhere."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def has_conv2d(model: nn.Module) -> bool:
    return any(isinstance(m, nn.Conv2d) for m in model.modules())


def configure(device: torch.device) -> None:
    """Process-wide CUDA switches: cuDNN picks the fastest kernels per shape, TF32 for what runs
    outside autocast. Nothing on the CPU."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


def prepare_model(model: nn.Module, device: torch.device) -> nn.Module:
    """channels_last for convnets on CUDA (in place: Parameter objects keep their identity, so
    optimizers and masks that hold them stay valid); unchanged on the CPU."""
    if device.type == "cuda":
        configure(device)
        if has_conv2d(model):
            model.to(memory_format=torch.channels_last)
    return model


def prepare_inputs(inputs: torch.Tensor) -> torch.Tensor:
    """Image batches in channels_last on CUDA, to match the convnet's weights."""
    if inputs.is_cuda and inputs.dim() == 4 and inputs.is_floating_point():
        return inputs.contiguous(memory_format=torch.channels_last)
    return inputs


def optimizer_options(device: torch.device) -> dict[str, Any]:
    """Fused (one kernel for all parameters) SGD / AdamW steps on CUDA; the default elsewhere."""
    return {"fused": True} if device.type == "cuda" else {}


def should_compile(setting: CompileSetting, device: torch.device, fewest_epochs: int) -> bool:
    """`train.compile`: true / false as given; auto compiles long phases on CUDA only."""
    if setting == "auto":
        return device.type == "cuda" and fewest_epochs >= AUTO_COMPILE_MIN_EPOCHS
    return bool(setting)


@dataclass(frozen=True)
class Execution:
    """How `fit` runs its forward passes (never what it computes): torch.compile, and for
    data-parallel training a wrapper such as DistributedDataParallel. The weights stay those of
    the module passed in, so best-epoch copies and pruning masks see the real parameters."""

    compile: bool = False
    backend: str = "inductor"  # tests use "eager": the same graph capture, no C++ compiler
    distribute: Callable[[nn.Module], nn.Module] | None = None  # training forward only

    def modules(self, model: nn.Module, device: torch.device) -> tuple[nn.Module, nn.Module]:
        """(training module, evaluation module) for `model`; both `model` itself by default.

        channels_last comes first: DDP lays out its gradient buckets by the parameters' strides.
        Evaluation never goes through DDP (no collectives per batch; metrics are reduced once).
        """
        prepare_model(model, device)
        train = self.distribute(model) if self.distribute is not None else model
        if not self.compile:
            return train, model
        return (
            torch.compile(train, backend=self.backend),
            torch.compile(model, backend=self.backend),
        )
