"""Whole attention heads cut out of the projections directly, for layouts Torch-Pruning's graph
cannot follow (grouped-query attention, fused qkv). A head set is what one key/value head takes
away: its key and value rows, the rows of the query heads that read it, and the matching input
columns of the output projection, so q and kv heads stay consistent (the group size is fixed).

The score of a head set is the SUM of the criterion's weight scores over every slice it removes
(as for channel groups); head targets come from the ORIGINAL counts (pruning.targets.head_keep).
Each removal is recorded by layer name and indices and replayed on a freshly built model.

A hook recognises attention by its layers' names and shapes, which cannot tell everything
(ALiBi slopes per head, a q/k norm over all heads at once, multi-query fused projections, a
width attribute the hook does not update). So before a layout is trusted, `inexact_cuts` cuts a
head from the model (and puts the layers back after: no copy of the model is made) and compares
it with the original whose head is silenced at the output projection: the two are the same
function exactly when the cut is right. Attention that
fails keeps its heads, with the reason recorded, and its MLP widths are still pruned.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from prunebench.measure import call, eval_mode, is_conv1d
from prunebench.models.roles import output_tensor
from prunebench.models.spec import HeadLayout

Slice = tuple[nn.Module, str, list[int]]  # (layer, 'out' or 'in', indices)


def counts(head: HeadLayout) -> tuple[int, int]:
    """(query heads, key/value heads), read from the layer shapes."""
    width = out_width(head.projections[0])
    if head.layout == "separate":
        return width // head.head_dim, out_width(head.projections[1]) // head.head_dim
    return width // (3 * head.head_dim), width // (3 * head.head_dim)


def out_width(layer: nn.Module) -> int:
    return layer.weight.shape[1] if is_conv1d(layer) else layer.weight.shape[0]


def in_width(layer: nn.Module) -> int:
    return layer.weight.shape[0] if is_conv1d(layer) else layer.weight.shape[1]


def weight_dim(layer: nn.Module, side: str) -> int:
    """The weight dimension that indexes `side` ('out' or 'in') channels."""
    return (1 if side == "out" else 0) if is_conv1d(layer) else (0 if side == "out" else 1)


def slices(head: HeadLayout, kv: int) -> list[Slice]:
    """Everything key/value head `kv` takes away (with its query heads)."""
    q_heads, kv_heads = counts(head)
    d = head.head_dim
    group = q_heads // kv_heads

    def span(start: int, n: int) -> list[int]:
        return list(range(start * d, (start + n) * d))

    queries = span(kv * group, group)
    if head.layout == "separate":
        q, k, v = head.projections
        return [(q, "out", queries), (k, "out", span(kv, 1)), (v, "out", span(kv, 1)),
                (head.output, "in", queries)]  # fmt: skip
    if head.layout == "qkv":
        rows = [part * q_heads * d + i for part in range(3) for i in span(kv, 1)]
    else:
        rows = list(range(kv * 3 * d, (kv + 1) * 3 * d))
    return [(head.projections[0], "out", rows), (head.output, "in", queries)]


def head_scores(head: HeadLayout, totals: dict[nn.Module, Any] | None) -> torch.Tensor:
    """Per key/value head: the summed weight scores of its slices, read from each layer's
    per-channel totals (criteria.groups.LayerTotals); random without scores."""
    _, kv_heads = counts(head)
    if totals is None:
        return torch.rand(kv_heads)
    out = torch.zeros(kv_heads, dtype=torch.float64)
    for kv in range(kv_heads):
        for layer, side, idxs in slices(head, kv):
            layer_totals = totals.get(layer)
            if layer_totals is not None:
                vector = layer_totals.out if side == "out" else layer_totals.inp
                out[kv] += float(vector[idxs].double().sum())
    return out


def _keep(layer: nn.Module, side: str, drop: set[int]) -> None:
    dim = weight_dim(layer, side)
    size = layer.weight.shape[dim]
    keep = torch.as_tensor([i for i in range(size) if i not in drop], device=layer.weight.device)
    layer.weight = nn.Parameter(layer.weight.data.index_select(dim, keep).contiguous())
    if side == "out" and getattr(layer, "bias", None) is not None:
        layer.bias = nn.Parameter(layer.bias.data.index_select(0, keep).contiguous())
    if is_conv1d(layer):
        layer.nf, layer.nx = layer.weight.shape[1], layer.weight.shape[0]
    else:
        layer.out_features, layer.in_features = layer.weight.shape


def remove(head: HeadLayout, kv_heads: list[int]) -> None:
    """Cut key/value heads `kv_heads` (and their query heads) out of the layers."""
    drops: dict[tuple[nn.Module, str], set[int]] = {}
    for kv in kv_heads:
        for layer, side, idxs in slices(head, kv):
            drops.setdefault((layer, side), set()).update(idxs)
    for (layer, side), drop in drops.items():
        _keep(layer, side, drop)


def lowest(scores: torch.Tensor, n: int) -> list[int]:
    """The `n` lowest-scoring heads (ties: lowest index first), sorted."""
    order = sorted(range(len(scores)), key=lambda i: (float(scores[i]), i))
    return sorted(order[:n])


def _silenced_output(model: nn.Module, layouts: list[HeadLayout], example_inputs: Any):
    """The model's output with key/value head 0 of each layout (and its query heads) adding
    nothing: their input columns of the output projection zeroed for one forward."""
    saved = []
    try:
        for layout in layouts:
            layer, side, idxs = slices(layout, 0)[-1]  # the output projection's input slice
            dim = weight_dim(layer, side)
            index = torch.as_tensor(idxs, device=layer.weight.device)
            saved.append((layer.weight, layer.weight.data.index_select(dim, index), dim, index))
            layer.weight.data.index_fill_(dim, index, 0.0)
        return output_tensor(call(model, example_inputs))
    finally:
        for weight, values, dim, index in saved:
            weight.data.index_copy_(dim, index, values)


@torch.no_grad()
def inexact_cuts(
    model: nn.Module,
    layouts: list[HeadLayout],
    after_step: Callable[[nn.Module, Any], None] | None,
    example_inputs: Any,
) -> dict[str, str]:
    """{attention name: reason} for the layouts whose head cut is not exact (see the module
    docstring). One trial per attention class: a copy with head 0 cut from every layout of
    that class must give the original's output with those heads silenced."""
    by_class: dict[str, list[HeadLayout]] = {}
    modules = dict(model.named_modules())
    for layout in layouts:
        if counts(layout)[1] >= 2:  # a single key/value head is never cut
            by_class.setdefault(type(modules[layout.name]).__name__, []).append(layout)
    failed: dict[str, str] = {}
    with eval_mode(model):
        for kind, group in by_class.items():
            reason = _trial(model, group, after_step, example_inputs)
            if reason is not None:
                why = (
                    f"attention heads of {kind} are kept: cutting one {reason}; MLP widths are "
                    "still pruned"
                )
                failed.update({layout.name: why for layout in group})
    return failed


WIDTHS = ("out_features", "in_features", "nf", "nx")


def _layer_state(group: list[HeadLayout]) -> list[tuple[nn.Module, dict[str, Any]]]:
    """What `remove` changes in the group's layers: weights, biases, width attributes."""
    layers = {layer for layout in group for layer, _, _ in slices(layout, 0)}
    keys = ("weight", "bias", *WIDTHS)
    return [(m, {k: getattr(m, k) for k in keys if hasattr(m, k)}) for m in layers]


def _trial(model, group, after_step, example_inputs) -> str | None:
    """Cut head 0 of every layout in `group` from the model itself, run it, and put the layers
    back (no copy of the model: a language model may barely fit once)."""
    expected = _silenced_output(model, group, example_inputs)
    saved = _layer_state(group)
    try:
        for layout in group:
            remove(layout, [0])
        if after_step is not None:
            after_step(model, None)
        got = output_tensor(call(model, example_inputs))
    except Exception as exc:
        return f"breaks the forward ({type(exc).__name__}: {' '.join(str(exc).split())[:160]})"
    finally:
        for layer, state in saved:
            for key, value in state.items():
                setattr(layer, key, value)
        if after_step is not None:
            after_step(model, None)
    if got.shape != expected.shape:
        return f"changes the output shape ({tuple(got.shape)} vs {tuple(expected.shape)})"
    scale = float(expected.abs().max()) or 1.0
    error = float((got.float() - expected.float()).abs().max()) / scale
    if not error <= 1e-4:
        return f"changes what the other heads compute (relative difference {error:.1e})"
    return None
