"""Channel-group scores for Torch-Pruning, built from per-weight scores.

A group is every slice of every layer that goes away with one channel (the conv's filter, its
BatchNorm entry, the next layer's input slice, ...). Its score is the SUM of the per-weight
scores over all those slices (weights only, no biases), e.g. Taylor: sum of (g*w)^2 over the
group. The layout rules mirror Torch-Pruning's own GroupMagnitudeImportance, so index mapping
through flatten/concat/residual adds is handled by the group's `root_idxs`.
"""

from __future__ import annotations

import torch
from torch import nn

from prunebench.measure import is_conv1d
from prunebench.pruning.tp_adapter import Importance, group_width, slices


def _local_scores(
    layer: nn.Module, kind: str | None, score: torch.Tensor, idxs: list[int]
) -> torch.Tensor | None:
    """Per-index sums of `score` (shaped like layer.weight) over the slice a cut removes:
    `kind` "out" (output channels), "in" (input channels) or "norm" (pruning.tp_adapter)."""
    transposed = getattr(layer, "transposed", False) or is_conv1d(layer)  # weight (in, out)
    if kind == "out":
        s = score.transpose(0, 1) if transposed else score
        return s[idxs].flatten(1).sum(1)
    if kind == "in":
        groups = getattr(layer, "groups", 1)
        if transposed:  # weight (in, out / groups, ...): input channel c is row c
            local = score.flatten(1).sum(1)
        elif isinstance(layer, nn.modules.conv._ConvNd) and groups > 1:
            # weight (out, in / groups, ...): input c = group j, slot r meets group j's outputs
            per_slot = score.flatten(2).sum(2)
            local = per_slot.view(groups, -1, per_slot.shape[1]).sum(1).flatten()
        else:
            local = score.transpose(0, 1).flatten(1).sum(1)
        return local[idxs]
    if kind == "norm":
        return score[idxs]
    return None


class SummedScoreImportance(Importance):
    """Per channel of a group: the sum of the given per-weight scores over the group's slices.

    `scores` maps a layer's weight Parameter to a tensor of its shape; layers without an entry
    (e.g. norms without affine weights) add nothing.
    """

    def __init__(self, scores: dict[nn.Parameter, torch.Tensor]) -> None:
        self.scores = scores

    @torch.no_grad()
    def __call__(self, group) -> torch.Tensor | None:
        total = None
        for piece in slices(group):
            weight = getattr(piece.layer, "weight", None)
            if not isinstance(weight, nn.Parameter) or weight not in self.scores:
                continue
            if any(r is None for r in piece.root_idxs):
                continue
            local = _local_scores(piece.layer, piece.kind, self.scores[weight], piece.idxs)
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
