"""Fast paths: bf16 autocast, cuDNN autotuning, fused optimizers and torch.compile on CUDA; the
channels_last memory format for convnets where it is known to work.

CPU runs stay float32. On CUDA, forward passes run under bf16 autocast (no loss scaling needed,
unlike fp16). channels_last (`train.channels_last`): on CUDA (`auto`) a convnet uses it when a
trial forward and backward on a copy succeeds and matches the default layout (tensor cores
prefer it); on the CPU only when the user turns it on (`true`): a model that flattens with
`x.view(...)` fails in it, and one structured ResNet aborted the process natively in a
channels_last backward on one thread (issue 23), which no trial can promise to catch. Every path
is deterministic: the same inputs give bit-identical results whichever executor computes a
step. Every function decides from the device it is given, never from what the machine has, so
tests run the CUDA branches' logic on the CPU.
"""

from __future__ import annotations

import contextlib
import copy
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


LayoutSetting = Literal["auto"] | bool
# Attributes a model carries (deep copies keep them): the user's setting, then the decision.
SETTING_ATTRIBUTE = "prunebench_channels_last"
DECISION_ATTRIBUTE = "_prunebench_layout"
TRIAL_SIZE = 32  # height and width of the trial batch when the model's inputs are not known
TRIAL_TOLERANCE = 5e-2  # bf16 outputs of the two layouts differ by rounding only


def set_layout(model: nn.Module, setting: LayoutSetting) -> None:
    """Record `train.channels_last` on the model; a changed setting is decided again."""
    if getattr(model, SETTING_ATTRIBUTE, "auto") != setting:
        model.__dict__.pop(DECISION_ATTRIBUTE, None)
    model.__dict__[SETTING_ATTRIBUTE] = setting


def uses_channels_last(model: nn.Module, device: torch.device) -> bool:
    """Whether `model` runs in channels_last on `device` (decided once per model and device
    type; `auto` on CUDA by `channels_last_works`)."""
    decided = model.__dict__.setdefault(DECISION_ATTRIBUTE, {})
    if device.type not in decided:
        setting = model.__dict__.get(SETTING_ATTRIBUTE, "auto")
        if setting == "auto":
            use = device.type == "cuda" and has_conv2d(model) and channels_last_works(model)
        else:
            use = bool(setting) and has_conv2d(model)
        decided[device.type] = use
    return decided[device.type]


def _trial_inputs(model: nn.Module) -> torch.Tensor | None:
    first = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    if first is None:
        return None
    weight = first.weight
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2, first.in_channels, TRIAL_SIZE, TRIAL_SIZE, generator=generator)
    return x.to(weight.device, weight.dtype)


def channels_last_works(model: nn.Module, inputs: torch.Tensor | None = None) -> bool:
    """A forward and backward of a copy of `model` in channels_last runs and gives what the
    default layout gives. False on any failure: the default layout is always safe."""
    inputs = _trial_inputs(model) if inputs is None else inputs
    if inputs is None:
        return False
    results = []
    for layout in (torch.contiguous_format, torch.channels_last):
        trial = copy.deepcopy(model).eval()  # no dropout: both layouts see the same function
        try:
            trial.to(memory_format=layout)
            devices = [inputs.device] if inputs.device.type == "cuda" else []
            with autocast(inputs.device), torch.random.fork_rng(devices=devices):
                out = trial(inputs.contiguous(memory_format=layout))
                out = getattr(out, "logits", out)
                out = out[0] if isinstance(out, (tuple, list)) else out
            out.float().sum().backward()
        except Exception:
            return False
        grads = [p.grad for p in trial.parameters() if p.grad is not None]
        results.append((out.detach().float(), grads))
    (out_a, grads_a), (out_b, grads_b) = results
    scale = float(out_a.abs().max()) or 1.0
    close = float((out_a - out_b).abs().max()) <= TRIAL_TOLERANCE * scale
    return close and len(grads_a) == len(grads_b)


def configure(device: torch.device) -> None:
    """Process-wide CUDA switches: cuDNN picks the fastest kernels per shape, TF32 for what runs
    outside autocast. Nothing on the CPU."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


def prepare_model(model: nn.Module, device: torch.device) -> nn.Module:
    """channels_last where `uses_channels_last` says so (in place: Parameter objects keep their
    identity, so optimizers and masks that hold them stay valid); the CUDA switches on CUDA."""
    configure(device)
    if uses_channels_last(model, device):
        if _not_channels_last(model):
            model.to(memory_format=torch.channels_last)
    elif _some_channels_last(model):  # a copy of a model that ran in it elsewhere
        model.to(memory_format=torch.contiguous_format)
    return model


def _not_channels_last(model: nn.Module) -> bool:
    """Some 4-d weight is not yet in channels_last (checked per epoch: cheaper than a no-op
    conversion of every parameter)."""
    layout = torch.channels_last
    return any(
        p.dim() == 4 and not p.is_contiguous(memory_format=layout) for p in model.parameters()
    )


def _some_channels_last(model: nn.Module) -> bool:
    return any(p.dim() == 4 and not p.is_contiguous() for p in model.parameters())


def prepare_inputs(inputs: torch.Tensor, model: nn.Module) -> torch.Tensor:
    """Image batches in channels_last when the model (or the module a compiled or data-parallel
    wrapper holds) runs in it."""
    inner = getattr(model, "_orig_mod", model)
    if isinstance(inner, nn.parallel.DistributedDataParallel):
        inner = inner.module
    decided = inner.__dict__.get(DECISION_ATTRIBUTE, {})
    if decided.get(inputs.device.type) and inputs.dim() == 4 and inputs.is_floating_point():
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
    channels_last: LayoutSetting = "auto"  # train.channels_last
    backend: str = "inductor"  # tests use "eager": the same graph capture, no C++ compiler
    distribute: Callable[[nn.Module], nn.Module] | None = None  # training forward only

    def modules(self, model: nn.Module, device: torch.device) -> tuple[nn.Module, nn.Module]:
        """(training module, evaluation module) for `model`; both `model` itself by default.

        channels_last comes first: DDP lays out its gradient buckets by the parameters' strides.
        Evaluation never goes through DDP (no collectives per batch; metrics are reduced once).
        """
        set_layout(model, self.channels_last)
        prepare_model(model, device)
        train = self.distribute(model) if self.distribute is not None else model
        if not self.compile:
            return train, model
        return (
            torch.compile(train, backend=self.backend),
            torch.compile(model, backend=self.backend),
        )
