"""Whole attention heads cut out of the projections directly, for layouts Torch-Pruning's graph
cannot follow (grouped-query attention, fused qkv). A head set is what one key/value head takes
away: its key and value rows, the rows of the query heads that read it, and the matching input
columns of the output projection, so q and kv heads stay consistent (the group size is fixed).

The score of a head set is the SUM of the criterion's weight scores over every slice it removes
(as for channel groups); head targets come from the ORIGINAL counts (pruning.targets.head_keep).
Each removal is recorded by layer name and indices and replayed on a freshly built model.
"""

from __future__ import annotations

import torch
from torch import nn

from prunebench.measure import is_conv1d
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


def head_scores(head: HeadLayout, scores: dict[nn.Parameter, torch.Tensor] | None) -> torch.Tensor:
    """Per key/value head: the summed weight scores of its slices (random without scores)."""
    _, kv_heads = counts(head)
    if scores is None:
        return torch.rand(kv_heads)
    out = torch.zeros(kv_heads, dtype=torch.float64)
    for kv in range(kv_heads):
        for layer, side, idxs in slices(head, kv):
            score = scores.get(layer.weight)
            if score is not None:
                index = torch.as_tensor(idxs, device=score.device)
                out[kv] += float(score.index_select(weight_dim(layer, side), index).sum())
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
