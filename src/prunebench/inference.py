"""A lean CPU inference module from a (pruned or dense) model, for deployment and fair timing.

Structurally pruned layers are small, so per-operator costs that a dense model hides decide
their latency. `lean` removes what it can, and the SAME steps must be applied to the dense
model a speed-up is measured against:
  1. fold eval-mode BatchNorm into the preceding convolution (torch.fx; skipped when the model
     cannot be traced symbolically),
  2. channels_last memory format (oneDNN's preferred layout for convolutions),
  3. TorchScript trace + freeze (constant weights, conv+bias/ReLU fusions).
Channel rounding (`prune.round_to`, e.g. 16 for AVX-512's 16-float blocks) happens at pruning
time. torch.compile (inductor) was tried too: no clear gain over freezing on this CPU, at ~45 s
of compile time per model. TorchScript is deprecated in torch 2.14 (a FutureWarning, silenced
here); when it goes, torch.compile with inductor freezing is the replacement.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn


@dataclass
class Lean:
    module: Any  # nn.Module or torch.jit.ScriptModule
    inputs: Any  # the example inputs in the layout the module expects
    steps: list[str] = field(default_factory=list)

    def __call__(self, inputs: Any) -> Any:
        return self.module(inputs)


def _channels_last(inputs: Any) -> Any:
    if isinstance(inputs, torch.Tensor) and inputs.dim() == 4:
        return inputs.contiguous(memory_format=torch.channels_last)
    return inputs


@torch.no_grad()
def lean(
    model: nn.Module, example_inputs: torch.Tensor, channels_last: bool = True, freeze: bool = True
) -> Lean:
    """An eval-mode copy of `model` made lean for CPU inference (the original is untouched)."""
    steps: list[str] = []
    module: Any = copy.deepcopy(model).eval()
    try:
        from torch.fx.experimental.optimization import fuse

        module = fuse(module)
        steps.append("fold-batchnorm")
    except Exception:  # not symbolically traceable: keep the BatchNorms
        module = copy.deepcopy(model).eval()
    inputs = example_inputs
    if channels_last and isinstance(inputs, torch.Tensor) and inputs.dim() == 4:
        module = module.to(memory_format=torch.channels_last)
        inputs = _channels_last(inputs)
        steps.append("channels-last")
    if freeze:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)
                module = torch.jit.freeze(torch.jit.trace(module, inputs).eval())
            steps.append("jit-freeze")
        except Exception:  # data-dependent control flow etc.: stay eager
            pass
    return Lean(module, inputs, steps)
