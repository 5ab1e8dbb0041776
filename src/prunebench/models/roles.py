"""Layers that play special roles in a model: its first convolution, its classifier and the
layers that produce its other outputs.

The classifier is the layer whose output becomes the model's logits, whatever its type
(SqueezeNet's is a Conv2d, a language model's `lm_head` shares the embedding's weight): the
Conv/Linear layer nearest to the output in the autograd graph of one forward pass on example
inputs, or, without inputs, in the torch.fx graph. A ModelSpec's `classifier` overrides both.
A model may return more than its logits (a tuple, list or dict, a Hugging Face output object):
`output_tensors` names every tensor of it and `output_layers` the layer nearest to each, whose
width structured pruning keeps unless the user names it in `prune.include`.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import torch
from torch import nn

from prunebench.errors import ConfigError
from prunebench.measure import call, eval_mode, is_weighted


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


# Fields of Hugging Face outputs that are caches or diagnostics, not predictions: attention
# heads and hidden sizes legitimately change their shapes.
AUXILIARY_FIELDS = {
    "loss",
    "past_key_values",
    "hidden_states",
    "attentions",
    "cross_attentions",
    "encoder_hidden_states",
    "encoder_attentions",
    "decoder_hidden_states",
    "decoder_attentions",
}


def output_tensors(output: Any, path: str = "output") -> dict[str, torch.Tensor]:
    """Every tensor a forward returns, by its place (`output[1]`, `output['features']`,
    `output.logits`), nested containers included; Hugging Face caches and diagnostics left out."""
    if isinstance(output, torch.Tensor):
        return {path: output}
    found: dict[str, torch.Tensor] = {}
    if isinstance(output, dict):  # Hugging Face ModelOutput objects are ordered dicts
        attribute = hasattr(output, "to_tuple")
        for key, value in output.items():
            if attribute and key in AUXILIARY_FIELDS:
                continue
            found.update(
                output_tensors(value, f"{path}.{key}" if attribute else f"{path}[{key!r}]")
            )
    elif isinstance(output, (tuple, list)):
        for i, value in enumerate(output):
            found.update(output_tensors(value, f"{path}[{i}]"))
    return found


@torch.no_grad()
def output_shapes(model: nn.Module, example_inputs: Any) -> dict[str, torch.Size]:
    """The shape of every tensor the model returns, by its place in the output."""
    with eval_mode(model):
        return {k: t.shape for k, t in output_tensors(call(model, example_inputs)).items()}


def _owners(model: nn.Module) -> dict[nn.Parameter, str]:
    """Parameter -> the Conv/Linear layer holding it (a tied weight: its last holder, the head)."""
    owners: dict[nn.Parameter, str] = {}
    for name, module in model.named_modules(remove_duplicate=False):
        if is_weighted(module):
            for param in module.parameters(recurse=False):
                owners[param] = name
    return owners


def _traced_output(model: nn.Module, example_inputs: Any) -> Any:
    """One forward in eval mode with autograd on (what the graph searches walk)."""
    try:
        with eval_mode(model), torch.enable_grad():
            return call(model, example_inputs)
    except ConfigError:
        raise
    except Exception as exc:
        shape = tuple(getattr(example_inputs, "shape", ()))
        raise ConfigError(
            f"the model fails on example inputs of shape {shape} ({type(exc).__name__}: "
            f"{' '.join(str(exc).split())}); check data.image_size and model.options"
        ) from None


def _nearest_layer(out: torch.Tensor, owners: dict[nn.Parameter, str]) -> str | None:
    """The Conv/Linear layer nearest to `out` in the autograd graph (breadth-first)."""
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


def traced_classifier(model: nn.Module, example_inputs: Any) -> str | None:
    """The layer nearest to the logits in the autograd graph (breadth-first from them)."""
    return _nearest_layer(output_tensor(_traced_output(model, example_inputs)), _owners(model))


def output_layers(model: nn.Module, example_inputs: Any) -> dict[str, str]:
    """{layer: the output it produces} for every tensor the model returns besides its logits
    (the classifier's, see `find_classifier`): the layer nearest to each in the autograd graph
    of one forward."""
    owners = _owners(model)
    out = _traced_output(model, example_inputs)
    logits = output_tensor(out) if not isinstance(out, dict) or hasattr(out, "logits") else None
    layers: dict[str, str] = {}
    for path, tensor in output_tensors(out).items():
        if tensor is logits:
            continue
        layer = _nearest_layer(tensor, owners)
        if layer is not None:
            layers.setdefault(layer, path)
    return layers


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
