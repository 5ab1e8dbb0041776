"""Cost of a model, measured on the model itself: MACs (dense and nonzero-weighted) and latency.

MACs are counted by torch's FlopCounterMode (every matmul/conv the forward really runs, attention
included; FLOPs / 2), so a structurally pruned model reports its true, smaller count. For
unstructured sparsity the Conv/Linear share is scaled by each layer's weight density: every
weight of a Conv or Linear layer takes part in the same number of multiply-adds, so the scaled
count is exactly the MACs a sparse kernel would still have to do.

Latency uses torch.utils.benchmark (warm-up, then timed blocks) with the process's thread count;
several models are measured in interleaved rounds and the median per model is kept, because a
shared machine drifts. `latency_pair` is what a structured step row records: the pruned model
against the run's dense model (two different modules, never a copy made by the pruner).
"""

from __future__ import annotations

import logging
import statistics
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from prunebench.accel import prepare_model

WEIGHTED = (nn.modules.conv._ConvNd, nn.Linear)


def is_conv1d(module: nn.Module) -> bool:
    """transformers' Conv1D (GPT-2): a Linear whose weight is stored (in, out)."""
    return type(module).__name__ == "Conv1D" and hasattr(module, "nf")


def is_weighted(module: nn.Module) -> bool:
    """A layer whose weight multiplies its input: Conv, Linear, transformers' Conv1D."""
    return isinstance(module, WEIGHTED) or is_conv1d(module)


LATENCY_ROUNDS = 3  # interleaved rounds of pruned / dense timing per step
LATENCY_MIN_TIME = 0.2  # seconds per timed block


@dataclass(frozen=True)
class MacCount:
    total: float  # all multiply-accumulates of one forward on the example inputs
    layers: dict[str, float]  # Conv/Linear layers only, by module name


def call(model: nn.Module, inputs: Any) -> Any:
    """Run a forward on example inputs given as a tensor, a tuple/list or a dict of keywords."""
    if isinstance(inputs, dict):
        return model(**inputs)
    if isinstance(inputs, (tuple, list)):
        return model(*inputs)
    return model(inputs)


def _layer_macs(module: nn.Module, inputs: torch.Tensor, output: torch.Tensor) -> float:
    """Dense MACs of one Conv/Linear call: each weight slice meets every output (input) element."""
    per_element = module.weight[0].numel()
    if isinstance(module, nn.Linear):
        return float(output.numel() * module.weight.shape[1])
    if is_conv1d(module):
        return float(output.numel() * module.weight.shape[0])
    if getattr(module, "transposed", False):  # weight (in, out/groups, *k): per input element
        return float(inputs.numel() * per_element)
    return float(output.numel() * per_element)  # weight (out, in/groups, *k): per output element


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """`model` in eval mode for the block, then back to the mode it was in."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


@contextmanager
def countable(model: nn.Module) -> Iterator[None]:
    """A forward whose every multiply FlopCounterMode sees, leaving nothing behind: no parameter
    requires grad (so no graph, no non-leaf tensor cached by the model, e.g. LeViT's attention
    biases, and no tensor for the counter's module tracker to hook: under no_grad a view of a
    Parameter handed to a submodule, as PiT does with its class token, makes it fail), and
    nn.MultiheadAttention's fused fast path is off (the counter does not see inside it: it
    counted 0 MACs for a whole torchvision ViT encoder layer)."""
    flags = [(p, p.requires_grad) for p in model.parameters()]
    fast_path = torch.backends.mha.get_fastpath_enabled()
    try:
        for param, _ in flags:
            param.requires_grad_(False)
        torch.backends.mha.set_fastpath_enabled(False)
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(fast_path)
        for param, flag in flags:
            param.requires_grad_(flag)


@torch.no_grad()
def count_macs(model: nn.Module, inputs: Any) -> MacCount:
    """MACs of one forward pass on `inputs` (model put in eval mode for the count)."""
    from torch.utils.flop_counter import FlopCounterMode

    layers: dict[str, float] = {}
    handles = []
    for name, module in model.named_modules():
        if is_weighted(module):

            def hook(mod, args, output, name=name):
                layers[name] = layers.get(name, 0.0) + _layer_macs(mod, args[0], output)

            handles.append(module.register_forward_hook(hook))
    try:
        with eval_mode(model), countable(model), FlopCounterMode(display=False) as counter:
            call(model, inputs)
    finally:
        for handle in handles:
            handle.remove()
    return MacCount(total=counter.get_total_flops() / 2.0, layers=layers)


def nonzero_macs(model: nn.Module, count: MacCount) -> float:
    """`count.total` with each Conv/Linear layer's MACs scaled by its weight density."""
    modules = dict(model.named_modules())
    saved = 0.0
    for name, macs in count.layers.items():
        weight = modules[name].weight
        density = int(torch.count_nonzero(weight)) / weight.numel()
        saved += macs * (1.0 - density)
    return count.total - saved


def repeat_batch(inputs: Any, batch_size: int) -> Any:
    """Example inputs of batch 1 repeated to `batch_size` along dim 0 (tensors inside too)."""
    if isinstance(inputs, torch.Tensor):
        return inputs[:1].expand(batch_size, *inputs.shape[1:]).contiguous()
    if isinstance(inputs, dict):
        return {k: repeat_batch(v, batch_size) for k, v in inputs.items()}
    if isinstance(inputs, (tuple, list)):
        return type(inputs)(repeat_batch(v, batch_size) for v in inputs)
    return inputs


def torch_benchmark():
    """torch.utils.benchmark. Importing it imports torch.utils.cpp_extension (for C++ timers we
    do not use), which on a CUDA build without a GPU logs "No CUDA runtime is found" when it finds
    a CUDA toolkit: not the user's business, so that logger is quiet during the import."""
    logger = logging.getLogger("torch.utils.cpp_extension")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        from torch.utils import benchmark
    finally:
        logger.setLevel(level)
    return benchmark


def _timer(model: nn.Module, inputs: Any):
    return torch_benchmark().Timer(
        stmt="call(model, inputs)",
        globals={"call": call, "model": model, "inputs": inputs},
        num_threads=torch.get_num_threads(),
    )


@torch.inference_mode()
def compare_latency(
    models: dict[str, nn.Module],
    inputs: Any,
    rounds: int = 3,
    min_run_time: float = 0.2,
    warmup: int = 2,
) -> dict[str, float]:
    """Median milliseconds per forward of each model, measured in interleaved rounds."""
    timers = {}
    for name, model in models.items():
        model.eval()
        for _ in range(warmup):
            call(model, inputs)
        timers[name] = _timer(model, inputs)
    samples: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(rounds):
        for name, timer in timers.items():
            if next(models[name].parameters()).is_cuda:
                torch.cuda.synchronize()
            samples[name].append(timer.blocked_autorange(min_run_time=min_run_time).median)
    return {name: 1000.0 * statistics.median(values) for name, values in samples.items()}


def latency_pair(
    pruned: nn.Module, dense: nn.Module, example_inputs: Any, batch_size: int
) -> dict[str, float]:
    """`latency_ms` / `dense_latency_ms` of a step row: both models timed in interleaved rounds
    on the example inputs repeated to `batch_size`, in the memory format training uses (so a
    dense model loaded from disk is not timed in a slower layout); modes are restored."""
    if pruned is dense:
        raise ValueError("latency_pair needs the dense model beside the pruned one, not itself")
    modes = [(model, model.training) for model in (pruned, dense)]
    for model in (pruned, dense):
        prepare_model(model, next(model.parameters()).device)
    try:
        times = compare_latency(
            {"pruned": pruned, "dense": dense},
            repeat_batch(example_inputs, batch_size),
            rounds=LATENCY_ROUNDS,
            min_run_time=LATENCY_MIN_TIME,
        )
    finally:
        for model, training in modes:
            model.train(training)
    return {"latency_ms": times["pruned"], "dense_latency_ms": times["dense"]}
