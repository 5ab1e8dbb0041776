"""Attention-head targets that do not compound across iterative pruning steps.

Torch-Pruning removes `ceil(ratio * current_heads)` heads per attention layer (local ranking) or
`current_total - int(initial_total * (1 - ratio))` heads (global ranking), where "current" and
"initial" are the heads of the model the MetaPruner was built on. Passing the cumulative target
of each step unchanged therefore compounds (8 heads, 0.5 in 4 steps -> 1 head). Here the number
of heads to keep is computed from the ORIGINAL count, `round(original * (1 - target))` (at least
one), and turned into the ratio of the CURRENT heads that removes exactly the difference.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from torch import nn

ORIGINAL_HEADS = "_prunebench_original_heads"


def remember_heads(module: nn.Module, heads: int) -> int:
    """The module's head count before any pruning (recorded on first sight, e.g. at build)."""
    if not hasattr(module, ORIGINAL_HEADS):
        setattr(module, ORIGINAL_HEADS, heads)
    return getattr(module, ORIGINAL_HEADS)


def heads_to_keep(original: int, target: float) -> int:
    return max(1, min(original, round(original * (1.0 - target))))


def removal_ratio(current: int, remove: int) -> float:
    """A ratio r with ceil(r * current) == remove and int(current * (1 - r)) == current - remove,
    robust to float rounding (the half-head margin)."""
    if remove <= 0:
        return 0.0
    return (remove - 0.5) / current


def head_pruning_kwargs(
    layers: Iterable[tuple[nn.Module, Sequence[nn.Module], int]], target: float | None
) -> dict[str, Any]:
    """MetaPruner head settings for `layers` = (attention module, its q/k/v projection(s),
    current heads).

    `head_pruning_ratio_dict` sets each layer's removal for local ranking; `head_pruning_ratio`
    the total removal for global ranking (Torch-Pruning then picks the layers by importance,
    among those whose own ratio is above zero). Without a target no head ratio is given.
    """
    if target is None:
        return {}
    per_layer: dict[nn.Module, float] = {}
    total_now = total_keep = 0
    for attention, projections, current in layers:
        original = remember_heads(attention, current)
        keep = heads_to_keep(original, target)
        for projection in projections:
            per_layer[projection] = removal_ratio(current, current - keep)
        total_now += current
        total_keep += min(keep, current)
    return {
        "head_pruning_ratio_dict": per_layer,
        "head_pruning_ratio": removal_ratio(total_now, total_now - total_keep),
    }
