"""Layers that play special roles in a model: its first convolution and its classifier.

The classifier is the layer whose output becomes the model's output, whatever its type
(SqueezeNet's is a Conv2d, a language model's `lm_head` shares the embedding's weight): the
Conv/Linear layer nearest to the output in the autograd graph of one forward pass on example
inputs, or, without inputs, in the torch.fx graph. A ModelSpec's `classifier` overrides both.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import torch
from torch import nn

from prunebench.errors import ConfigError
from prunebench.measure import call, is_weighted


def first_conv_name(model: nn.Module) -> str | None:
    return next(
        (n for n, m in model.named_modules() if isinstance(m, nn.modules.conv._ConvNd)), None
    )


def output_tensor(output: Any) -> torch.Tensor:
    """The logits of a forward's result: a tensor, a Hugging Face output, or a tuple's first."""
    if isinstance(output, torch.Tensor):
        return output
    logits = getattr(output, "logits", None)
    if isinstance(logits, torch.Tensor):
        return logits
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    raise ConfigError(f"the model returns {type(output).__name__}, not a tensor of logits")


def _owners(model: nn.Module) -> dict[nn.Parameter, str]:
    """Parameter -> the Conv/Linear layer holding it (a tied weight: its last holder, the head)."""
    owners: dict[nn.Parameter, str] = {}
    for name, module in model.named_modules(remove_duplicate=False):
        if is_weighted(module):
            for param in module.parameters(recurse=False):
                owners[param] = name
    return owners


def traced_classifier(model: nn.Module, example_inputs: Any) -> str | None:
    """The layer nearest to the output in the autograd graph (breadth-first from the output)."""
    owners = _owners(model)
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            out = output_tensor(call(model, example_inputs))
    except ConfigError:
        raise
    except Exception as exc:
        shape = tuple(getattr(example_inputs, "shape", ()))
        raise ConfigError(
            f"the model fails on example inputs of shape {shape} ({type(exc).__name__}: "
            f"{' '.join(str(exc).split())}); check data.image_size and model.options"
        ) from None
    finally:
        model.train(was_training)
    if out.grad_fn is None:
        return None
    queue, seen = deque([out.grad_fn]), set()
    while queue:
        fn = queue.popleft()
        for nxt, _ in fn.next_functions:
            if nxt is None or nxt in seen:
                continue
            seen.add(nxt)
            variable = getattr(nxt, "variable", None)
            if variable is not None and variable in owners:
                return owners[variable]
            queue.append(nxt)
    return None


def fx_classifier(model: nn.Module) -> str | None:
    """The same search in a torch.fx graph (no inputs needed; fails on untraceable models)."""
    graph = torch.fx.symbolic_trace(model).graph
    modules = dict(model.named_modules())
    output = next(node for node in graph.nodes if node.op == "output")
    queue, seen = deque([output]), set()
    while queue:
        node = queue.popleft()
        for arg in node.all_input_nodes:
            if arg in seen:
                continue
            seen.add(arg)
            if arg.op == "call_module" and is_weighted(modules.get(arg.target, nn.Identity())):
                return str(arg.target)
            queue.append(arg)
    return None


def find_classifier(
    model: nn.Module, example_inputs: Any = None, declared: str | None = None
) -> str | None:
    """The classifier's module name: `declared`, else traced from the output."""
    if declared is not None:
        if declared not in dict(model.named_modules()):
            raise ConfigError(f"the model has no classifier layer named '{declared}'")
        return declared
    if example_inputs is not None:
        return traced_classifier(model, example_inputs)
    try:
        return fx_classifier(model)
    except Exception as exc:
        raise ConfigError(
            f"cannot find the classifier without example inputs ({type(exc).__name__} in "
            "torch.fx tracing); pass example_inputs=... or classifier='layer name'"
        ) from None
