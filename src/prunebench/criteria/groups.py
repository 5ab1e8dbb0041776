"""Channel-group scores for Torch-Pruning, built from per-weight scores.

A group is every slice of every layer that goes away with one channel (the conv's filter, its
BatchNorm entry, the next layer's input slice, ...). Its score is the SUM of the per-weight
scores over all those slices (weights only, no biases), e.g. Taylor: sum of (g*w)^2 over the
group. The layout rules mirror Torch-Pruning's own GroupMagnitudeImportance, so index mapping
through flatten/concat/residual adds is handled by the group's `root_idxs`.

Memory: a criterion hands its scores over one layer at a time (`Criterion.scores_each`) and each
is reduced at once to per-channel sums (`LayerTotals`), all that a group or a head cut reads; a
language model's full per-weight scores never exist all at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn

from prunebench.measure import is_conv1d
from prunebench.pruning.tp_adapter import Importance, group_width, slices


@dataclass(frozen=True)
class LayerTotals:
    """A layer's weight scores summed over everything but one output channel (`out`) or one
    input channel (`inp`); a 1-D weight (a norm's) keeps its scores as they are (`norm`). It is
    all that a channel group or a head cut reads, so the per-weight scores can go as soon as
    their layer is reduced."""

    out: torch.Tensor | None = None
    inp: torch.Tensor | None = None
    norm: torch.Tensor | None = None


def layer_totals(layer: nn.Module, score: torch.Tensor) -> LayerTotals:
    """`score` (shaped like layer.weight) reduced to per-channel sums, in its own dtype and in
    the order of the slice-wise sums they replace (the same numbers bit for bit)."""
    if score.dim() < 2:
        return LayerTotals(norm=score)
    transposed = getattr(layer, "transposed", False) or is_conv1d(layer)  # weight (in, out)
    # contiguous: each output channel's row summed in memory order, as a slice of it would be
    rows = score.transpose(0, 1).contiguous() if transposed else score
    out = rows.flatten(1).sum(1)
    groups = getattr(layer, "groups", 1)
    if transposed:  # weight (in, out / groups, ...): input channel c is row c
        inp = score.flatten(1).sum(1)
    elif isinstance(layer, nn.modules.conv._ConvNd) and groups > 1:
        # weight (out, in / groups, ...): input c = group j, slot r meets group j's outputs
        per_slot = score.flatten(2).sum(2)
        inp = per_slot.view(groups, -1, per_slot.shape[1]).sum(1).flatten()
    else:
        inp = score.transpose(0, 1).flatten(1).sum(1)
    return LayerTotals(out=out, inp=inp)


def _local_scores(totals: LayerTotals, kind: str | None, idxs: list[int]) -> torch.Tensor | None:
    """Per-index sums over the slice a cut removes: `kind` "out" (output channels), "in"
    (input channels) or "norm" (pruning.tp_adapter)."""
    vector = {"out": totals.out, "in": totals.inp, "norm": totals.norm}.get(kind or "")
    return None if vector is None else vector[idxs]


def reduce_scores(
    model: nn.Module, scores: Iterable[tuple[str, torch.Tensor]]
) -> dict[nn.Module, LayerTotals]:
    """{layer: its LayerTotals} for the `.weight` scores among (parameter name, score) pairs,
    each reduced as it arrives and then dropped: one layer's full scores at a time. Keyed by
    the layer, not its weight, so that the totals do not keep a weight a cut replaces alive."""
    modules = dict(model.named_modules())
    totals = {}
    for name, score in scores:
        owner, _, kind = name.rpartition(".")
        layer = modules.get(owner)
        if kind == "weight" and isinstance(getattr(layer, "weight", None), nn.Parameter):
            totals[layer] = layer_totals(layer, score)
        del score
    return totals


class SummedScoreImportance(Importance):
    """Per channel of a group: the sum of the per-weight scores over the group's slices.

    `totals` maps a layer to its reduced weight scores (`reduce_scores`); layers without an
    entry (e.g. norms without affine weights) add nothing.
    """

    def __init__(self, totals: dict[nn.Module, LayerTotals]) -> None:
        self.totals = totals

    @torch.no_grad()
    def __call__(self, group) -> torch.Tensor | None:
        total = None
        for piece in slices(group):
            totals = self.totals.get(piece.layer)
            if totals is None or any(r is None for r in piece.root_idxs):
                continue
            local = _local_scores(totals, piece.kind, piece.idxs)
            if local is None:
                continue
            if total is None:
                total = torch.zeros(group_width(group), dtype=torch.float64, device=local.device)
            index = torch.as_tensor(piece.root_idxs, device=local.device)
            total.scatter_add_(0, index, local.to(torch.float64))
        return None if total is None else total.float()


class RandomGroupImportance(Importance):
    """Uniform random score per channel (torch's global RNG, seeded per step)."""

    def __call__(self, group) -> torch.Tensor:
        return torch.rand(group_width(group))
