"""A lean CPU inference module from a (pruned or dense) model, for deployment and fair timing.

Structurally pruned layers are small, so per-operator costs that a dense model hides decide
their latency. `lean` removes what it can, and the SAME steps must be applied to the dense
model a speed-up is measured against. Channel rounding (`prune.round_to`, e.g. 16 for
AVX-512's 16-float blocks) happens at pruning time. Two backends:

  onnxruntime (default): the model exported to ONNX (torch.export-based exporter) and run by
      an onnxruntime CPU session with every graph optimization (BatchNorm folded into the
      convolutions, conv + activation / add fusions, its blocked NCHWc layout). Needs the
      `onnx` extra.
  torch: eager PyTorch with BatchNorm folded (torch.fx) and channels_last (oneDNN's preferred
      layout for convolutions); no extra packages.

TorchScript trace + freeze (what this module used before) is deprecated in torch 2.14;
benchmarks/structured_speedup.py still times it beside the two for comparison.
torch.compile (inductor, freezing) is the other supported path: no clear gain over freezing on
this CPU at ~45 s of compile time per model, so it is not used here.
"""

from __future__ import annotations

import copy
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from prunebench.export.onnx import OrtModule, to_onnx

BACKENDS = ("onnxruntime", "torch")


@dataclass
class Lean:
    module: Any  # a callable: inputs in the layout below -> outputs (torch tensors)
    inputs: Any  # the example inputs in the layout the module expects
    steps: list[str] = field(default_factory=list)

    def __call__(self, inputs: Any) -> Any:
        return self.module(inputs)


def _channels_last(inputs: Any) -> Any:
    if isinstance(inputs, torch.Tensor) and inputs.dim() == 4:
        return inputs.contiguous(memory_format=torch.channels_last)
    return inputs


def _fold_batchnorm(model: nn.Module) -> tuple[nn.Module, bool]:
    try:
        from torch.fx.experimental.optimization import fuse

        return fuse(copy.deepcopy(model).eval()), True
    except Exception:  # not symbolically traceable: keep the BatchNorms
        return copy.deepcopy(model).eval(), False


@torch.no_grad()
def lean(
    model: nn.Module,
    example_inputs: torch.Tensor,
    backend: str = "onnxruntime",
    threads: int | None = None,
) -> Lean:
    """A lean inference callable of `model` (the original is untouched); `threads` defaults to
    torch's intra-op thread count."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, not '{backend}'")
    if backend == "onnxruntime":
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "model.onnx"
            dynamic = to_onnx(model, example_inputs, path)
            module = OrtModule(path, threads or torch.get_num_threads())
        steps = ["onnx-export" + ("" if dynamic else " (fixed batch)"), "onnxruntime-all-opts"]
        return Lean(module, example_inputs, steps)
    module, folded = _fold_batchnorm(model)
    steps = ["fold-batchnorm"] if folded else []
    inputs = example_inputs
    if isinstance(inputs, torch.Tensor) and inputs.dim() == 4:
        module = module.to(memory_format=torch.channels_last)
        inputs = _channels_last(inputs)
        steps.append("channels-last")
    return Lean(module, inputs, steps)
