"""Fast paths: bf16 autocast, cuDNN autotuning, fused optimizers and torch.compile on CUDA; the
channels_last memory format for convnets on CUDA and on the CPU.

CPU runs stay float32. On CUDA, forward passes run under bf16 autocast (no loss scaling needed,
unlike fp16). Convolutional models use channels_last on both: tensor cores prefer it, and on the
CPU oneDNN's convolutions, pooling and ReLU run faster in it (one training step of the digits
CNN: 12.7 vs 16.5 ms, max-pooling 6.5 vs 0.6 ms; ResNet-18 CIFAR 5 % faster). Every path is
deterministic: the same inputs give bit-identical results whichever executor computes a step.
Every function decides from the device it is given, never from what the machine has, so tests
run the CUDA branches' logic on the CPU.
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


CHANNELS_LAST = ("cuda", "cpu")  # device types whose convnets run in channels_last


def configure(device: torch.device) -> None:
    """Process-wide CUDA switches: cuDNN picks the fastest kernels per shape, TF32 for what runs
    outside autocast. Nothing on the CPU."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


def prepare_model(model: nn.Module, device: torch.device) -> nn.Module:
    """channels_last for convnets (in place: Parameter objects keep their identity, so optimizers
    and masks that hold them stay valid); the CUDA switches on CUDA."""
    configure(device)
    if device.type in CHANNELS_LAST and _not_channels_last(model) and has_conv2d(model):
        model.to(memory_format=torch.channels_last)
    return model


def _not_channels_last(model: nn.Module) -> bool:
    """Some 4-d weight is not yet in channels_last (checked per epoch: cheaper than a no-op
    conversion of every parameter)."""
    layout = torch.channels_last
    return any(
        p.dim() == 4 and not p.is_contiguous(memory_format=layout) for p in model.parameters()
    )


def prepare_inputs(inputs: torch.Tensor) -> torch.Tensor:
    """Image batches in channels_last, to match the convnet's weights."""
    if inputs.device.type in CHANNELS_LAST and inputs.dim() == 4 and inputs.is_floating_point():
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
